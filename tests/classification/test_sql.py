"""SQL given to `execute` is read statement by statement, by its kind; unreadable SQL is never lighter."""

from __future__ import annotations

import pytest

from include.classification.classes import MigrationClass
from include.classification.sql import DYNAMIC, classify_sql, split_statements

C = MigrationClass


@pytest.mark.parametrize(
    ("sql", "cls", "table"),
    [
        ("UPDATE issues SET state_id = 1 WHERE state_id IS NULL", C.DATA, "issues"),
        ("update ONLY public.issues set x = 1", C.DATA, "issues"),
        ("DELETE FROM web_hook_logs WHERE created_at < now()", C.DATA, "web_hook_logs"),
        ('INSERT INTO "plan_limits" (plan_id) VALUES (1)', C.DATA, "plan_limits"),
        ("WITH doomed AS (SELECT id FROM todos LIMIT 10) DELETE FROM todos USING doomed", C.DATA, "todos"),
        ("WITH counts AS (SELECT 1) SELECT * FROM counts", C.NOOP, None),
        ("SELECT setval('issues_id_seq', 100)", C.DATA, None),
        ("SELECT COUNT(*) FROM issues", C.NOOP, None),
        ("SET statement_timeout TO 0", C.NOOP, None),
        ("RESET ALL", C.NOOP, None),
        (
            "CREATE INDEX CONCURRENTLY idx ON merge_requests (target_project_id)",
            C.SCHEMA_HEAVY,
            "merge_requests",
        ),
        ("CREATE UNIQUE INDEX idx ON ONLY p_ci_builds USING btree (id)", C.SCHEMA_HEAVY, "p_ci_builds"),
        (
            "CREATE TABLE IF NOT EXISTS gitlab_partitions_dynamic.audit_events_202601 (LIKE audit_events)",
            C.SCHEMA_HEAVY,
            "audit_events_202601",
        ),
        (
            "CREATE TRIGGER t AFTER DELETE ON projects FOR EACH STATEMENT EXECUTE FUNCTION f()",
            C.SCHEMA_HEAVY,
            "projects",
        ),
        ("ALTER TABLE issues ADD CONSTRAINT check_x CHECK (x > 0) NOT VALID", C.SCHEMA_HEAVY, "issues"),
        ("ALTER TABLE issues VALIDATE CONSTRAINT check_x", C.SCHEMA_HEAVY, "issues"),
        ("ALTER TABLE issues DROP COLUMN legacy", C.CLEANUP, "issues"),
        ("ALTER TABLE ONLY issues RENAME COLUMN a TO b", C.CLEANUP, "issues"),
        ("ALTER TABLE p_ci_builds DETACH PARTITION ci_builds_101", C.CLEANUP, "p_ci_builds"),
        ("ALTER INDEX idx_old RENAME TO idx_new", C.CLEANUP, None),
        ("DROP INDEX CONCURRENTLY IF EXISTS idx", C.CLEANUP, None),
        ("DROP TABLE IF EXISTS legacy_things", C.CLEANUP, "legacy_things"),
        ("TRUNCATE TABLE legacy_things", C.CLEANUP, "legacy_things"),
        ("LOCK TABLE ci_builds IN ACCESS EXCLUSIVE MODE", C.SCHEMA_HEAVY, "ci_builds"),
        ("VACUUM ANALYZE issues", C.SCHEMA_HEAVY, None),
        ("COMMENT ON TABLE issues IS 'x'", C.SCHEMA_HEAVY, "issues"),
        ("DO $$ BEGIN UPDATE plan_limits SET x = 1; END $$", C.DATA, "plan_limits"),
        ("DO $$ BEGIN DROP TABLE IF EXISTS x; END $$", C.CLEANUP, None),
        ("DO $$ BEGIN PERFORM pg_sleep(1); END $$", C.UNKNOWN, None),
        ("CALL some_procedure()", C.UNKNOWN, None),
        (f"{DYNAMIC} FROM issues", C.UNKNOWN, None),
    ],
)
def test_one_statement(sql, cls, table):
    (verdict,) = classify_sql(sql)
    assert (verdict.cls, verdict.table) == (cls, table), verdict


def test_sql_that_cannot_be_read_is_unknown_never_lighter():
    assert [v.cls for v in classify_sql(None)] == [C.UNKNOWN]
    assert [v.cls for v in classify_sql(DYNAMIC)] == [C.UNKNOWN]
    assert [v.cls for v in classify_sql("   ")] == [C.UNKNOWN]


def test_semicolons_inside_literals_bodies_and_comments_do_not_split():
    sql = """
        -- DROP TABLE issues; (a comment)
        UPDATE notes SET note = 'a;b' WHERE note = "x;y";
        /* DELETE FROM x; */
        CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN DELETE FROM t; RETURN NULL; END $body$ LANGUAGE plpgsql;
        SELECT 'it''s; fine'
    """
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[0].startswith("UPDATE notes")
    assert "DELETE FROM t; RETURN NULL;" in statements[1]
    assert [v.cls for v in classify_sql(sql)] == [C.DATA, C.SCHEMA_HEAVY, C.NOOP]


def test_comments_only_is_noop():
    assert [v.cls for v in classify_sql("-- nothing to do\n/* really */")] == [C.NOOP]
