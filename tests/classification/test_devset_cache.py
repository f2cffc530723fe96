"""`python -m include.classification.devset_cache`: the code index's answers pasted into the text cache,
page by page, checked against the labels' sha256; and the list of rows still missing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from include.classification.devset_cache import main, missing, store

COMMIT = "a" * 40
PATH = "db/post_migrate/20240101000000_drop_marks.rb"
TEXT = 'class DropMarks < Gitlab::Database::Migration[2.2]\n  def up\n    drop_table :marks # "gone"\n  end\nend\n'


def answer(text: str, offset: int = 0, total: int | None = None) -> str:
    return json.dumps(
        {
            "repo": "gitlabhq/gitlabhq",
            "path": PATH,
            "commit": COMMIT,
            "offset": offset,
            "text": text,
            "total_chars": len(TEXT) if total is None else total,
        }
    )


def labels_file(tmp_path: Path, digest: str) -> Path:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "repo,path,commit,sha256,year,reader_1,reader_2,label,note\n"
        f"gitlabhq/gitlabhq,{PATH},{COMMIT},{digest},2024,cleanup,cleanup,cleanup,drop_table\n"
    )
    return labels


def test_a_file_in_two_pages_is_stored_whole_and_checked(tmp_path: Path) -> None:
    digest = hashlib.sha256(TEXT.encode()).hexdigest()
    cache = tmp_path / "cache"
    first = store(answer(TEXT[:30]), cache, {(COMMIT, PATH): digest})
    assert first == [f"PART {PATH}: 30/{len(TEXT)}, next offset 30"]
    assert not (cache / COMMIT / PATH).exists()
    second = store(answer(TEXT[30:], offset=30), cache, {(COMMIT, PATH): digest})
    assert second == [f"OK {PATH} {COMMIT} sha256={digest}"]
    assert (cache / COMMIT / PATH).read_text() == TEXT
    assert missing(cache, labels_file(tmp_path, digest)) == []


def test_a_copy_that_differs_from_the_row_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    labels = labels_file(tmp_path, hashlib.sha256(TEXT.encode()).hexdigest())
    cache = tmp_path / "cache"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(answer(TEXT.replace("gone", "g0ne"))))
    assert main(["store", "--labels", str(labels), "--cache", str(cache)]) == 1
    assert capsys.readouterr().out.startswith(f"MISMATCH {PATH}")
    assert missing(cache, labels) == [f"gitlabhq/gitlabhq {PATH} {COMMIT}"]


def test_a_page_out_of_order_is_a_gap_and_a_new_file_prints_its_digest(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert store(answer(TEXT[30:], offset=30), cache, {})[0].startswith(f"GAP {PATH}")
    two = answer(TEXT) + "\n" + answer(TEXT)
    lines = store(two, cache, {})
    assert lines == [f"NEW {PATH} {COMMIT} sha256={hashlib.sha256(TEXT.encode()).hexdigest()}"] * 2


def test_paths_that_leave_the_cache_are_refused(tmp_path: Path) -> None:
    bad = json.dumps({"path": "../x.rb", "commit": COMMIT, "text": "", "total_chars": 0})
    try:
        store(bad, tmp_path, {})
    except ValueError as exc:
        assert "refusing path" in str(exc)
    else:
        raise AssertionError("a path with .. was stored")
