"""Reading a submission from disk: plain files, sub-folders by relative name (a red-teaming
scoring's ``validations/``), and what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataperf.exceptions import SubmissionError
from dataperf.submission_files import MAX_DEPTH, MAX_FILES, read_submission


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(SubmissionError) as caught:
        read_submission(path)
    return [(p.file, p.rule) for p in caught.value.problems]


def test_files_in_folders_are_named_by_their_relative_path(tmp_path: Path) -> None:
    (tmp_path / "validations").mkdir()
    (tmp_path / "attacks.jsonl").write_bytes(b"a")
    (tmp_path / "validations" / "validations.jsonl").write_bytes(b"v")
    (tmp_path / "validations" / ".DS_Store").write_bytes(b"x")  # droppings are skipped
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"ref")
    assert read_submission(tmp_path) == {"attacks.jsonl": b"a",
                                         "validations/validations.jsonl": b"v"}
    assert read_submission(tmp_path / "attacks.jsonl") == {"attacks.jsonl": b"a"}


def test_links_deep_folders_and_too_many_files_are_refused(tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    (linked / "inner").mkdir(parents=True)
    (linked / "inner" / "elsewhere").symlink_to("/etc/hostname")
    assert problems(linked) == [("inner/elsewhere", "not-a-file")]

    deep = tmp_path / "deep"
    folder = deep.joinpath(*[f"level{i}" for i in range(MAX_DEPTH)])
    folder.mkdir(parents=True)
    (folder / "x.csv").write_bytes(b"1")
    assert problems(deep) == [("/".join(f"level{i}" for i in range(MAX_DEPTH)), "not-a-file")]

    crowded = tmp_path / "crowded"
    (crowded / "sub").mkdir(parents=True)
    for i in range(MAX_FILES + 1):
        (crowded / "sub" / f"{i:03}.csv").write_bytes(b"1")
    assert problems(crowded) == [(str(crowded), "too-large")]


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "a.csv").write_bytes(b"1")
    assert problems(tmp_path) == [("pipe", "not-a-file")]
