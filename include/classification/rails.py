"""Rails' vocabulary as the classifier reads it: migration file names, class shapes, declarations,
method-name conventions and ActiveSupport's table-name inflection.

These are facts about Rails and Ruby themselves, plus the declarations of GitLab's migration class that
fill fields of the result (`restrict_gitlab_migration`, `milestone`); what a helper does at PDM time is
never here but in catalogue.yaml.
"""

from __future__ import annotations

import re

FILE_NAME = re.compile(r"^(\d+)_([a-z0-9_]+)\.rb$")
MIGRATION_SUPERCLASS = re.compile(r"Migration(\[|$)")
SPACE = re.compile(r"\s+|\(\)")
DECLARATIONS = frozenset(
    {b"restrict_gitlab_migration", b"milestone", b"disable_ddl_transaction!", b"enable_lock_retries!"}
)
DECLARATION_STARTS = tuple(DECLARATIONS)
# A declaration as nearly every migration writes it (no parentheses, a plain literal argument), for which
# the text alone gives what read_declaration would find in the tree; anything else is read from the tree.
SIMPLE_DECLARATION = re.compile(
    rb"(disable_ddl_transaction!|enable_lock_retries!)"
    rb"|milestone[ \t]+(['\"])(\d+(?:\.\d+)*)\2"
    rb"|restrict_gitlab_migration[ \t]+gitlab_schema:[ \t]*:([A-Za-z_][A-Za-z0-9_]*)"
)
SENDERS = frozenset({"send", "public_send", "__send__"})
QUOTERS = frozenset({"quote_table_name", "quote_column_name", "quote_ident"})
# Class methods of a model that give its table's name (`Model.table_name`, `Model.quoted_table_name`).
MODEL_TABLE_READERS = frozenset({"table_name", "quoted_table_name"})
# A query built with Arel or a relation, given as SQL: a SELECT whatever its conditions.
SELECT_BUILDERS = frozenset({"project", "to_sql"})
TO_COLLECTION = frozenset(
    {"to_h", "to_a", "to_set", "to_hash", "with_indifferent_access", "symbolize_keys", "stringify_keys"}
)
# What a model body may declare and stay plain (no associations, callbacks or application mixins).
PLAIN_MODEL_CALLS = frozenset(
    {"include", "extend", "scope", "serialize", "ignore_column", "ignore_columns", "enum", "attribute"}
)
RUBY_COLLECTIONS = frozenset({"Hash", "Array", "Set", "::Hash", "::Array", "::Set"})
# A constant array walked element by element (`TABLES.each do |table|`): at most this many walks.
MAX_UNROLL = 40
STRING_METHODS = frozenset(
    {
        "squish",
        "strip",
        "strip_heredoc",
        "chomp",
        "freeze",
        "to_s",
        "dup",
        "lstrip",
        "rstrip",
        "squeeze",
        "html_safe",
    }
)
# A no-argument call on a record is read as an attribute (harmless) unless it is named for an action
# (`expire_cache`, `run`); a name that says "attribute" (`start_date`, `update_count`) is still a read.
ATTRIBUTE = re.compile(r"_(at|on|date|id|ids|count|name|type|by|status|state|size|version|key|value)$")
ACTION_WORDS = re.compile(
    r"^(expire|refresh|schedule|execute|perform|reset|sync|destroy|delete|update|save|remove|run|process|clear|"
    r"flush|enqueue|create|migrate|purge|cleanup|touch|recalculate|backfill|import|export|call|invoke|apply|"
    r"trigger|start|stop|drop|truncate|write|fix|repair|rebuild|reindex|recompute|populate|generate|notify|"
    r"deliver|insert|upsert|increment|decrement|enable|disable|lock|unlock|archive|transfer|move|copy)(?:_|$)"
)


def version_and_name(path: str) -> tuple[str, str]:
    """Timestamp prefix and snake-case name from a migration file name (`""` version when it has none)."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    match = FILE_NAME.match(base)
    if match:
        return match.group(1), match.group(2)
    return "", base[:-3] if base.endswith(".rb") else base


def tableize(constant: str) -> str:
    """Rails' default table of a model constant: `Ci::Build` -> ci_builds, `MergeRequest` -> merge_requests."""
    snake = "_".join(
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part).lower() for part in constant.split("::") if part
    )
    if snake.endswith("y") and not snake.endswith(("ay", "ey", "oy", "uy")):
        return snake[:-1] + "ies"
    if snake.endswith(("s", "x", "ch", "sh")):
        return snake + "es"
    return snake + "s"


# Association declarations of a model: `has_many :x` reads the rows of another model through a relation.
ASSOCIATIONS = frozenset({"has_many", "has_one", "belongs_to", "has_and_belongs_to_many"})


def singularize(name: str) -> str:
    """Enough of Rails' singular for association names: `group_stages` -> group_stage, `entries` -> entry."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("ses", "xes", "ches", "shes")):
        return name[:-2]
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def camelize(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def squash(name: str) -> str:
    return name.replace("_", "").lower()
