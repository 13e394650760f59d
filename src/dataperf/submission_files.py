"""Reading a submission from disk: a directory of files (or one file), safely and bounded."""

from __future__ import annotations

import os
from pathlib import Path

from dataperf.exceptions import DataPerfError, Problem, SubmissionError

MAX_FILES = 64
MAX_TOTAL_BYTES = 64 * 1024 * 1024


def read_submission(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """File name -> bytes for the regular files directly in ``path`` (or ``path`` itself).

    Names starting with '.' (editor and OS droppings) are ignored; links, sub-directories,
    too many files and too many bytes are refused, so a hostile directory cannot make the
    scorer read outside it or exhaust memory.
    """
    path = Path(path)
    if not path.exists():
        raise DataPerfError(f"submission {path} does not exist")
    entries = [path] if path.is_file() else sorted(path.iterdir())
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    total = 0
    for entry in entries:
        if entry.name.startswith(".") and entry != path:
            continue
        if entry.is_symlink() or not entry.is_file():
            kind = "a link" if entry.is_symlink() else "a directory or special file"
            problems.append(Problem(entry.name, "not-a-file", f"is {kind}; submit plain files"))
            continue
        total += entry.stat().st_size
        if len(files) >= MAX_FILES or total > MAX_TOTAL_BYTES:
            problems.append(Problem(str(path), "too-large", f"holds more than {MAX_FILES} files "
                                    f"or {MAX_TOTAL_BYTES:,} bytes"))
            break
        files[entry.name] = entry.read_bytes()
    if problems:
        raise SubmissionError(problems)
    if not files:
        raise SubmissionError([Problem(str(path), "empty-submission", "holds no files")])
    return files


def write_submission(files: dict[str, bytes], directory: str | os.PathLike[str]) -> Path:
    """Write submission files into ``directory`` (created; existing files of the same names are
    replaced atomically, one by one)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / Path(name).name
        temporary = target.with_name(f".{target.name}.partial")
        temporary.write_bytes(data)
        temporary.replace(target)
    return directory
