"""Reading a submission from disk: a directory of files (or one file), safely and bounded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from dataperf.exceptions import DataPerfError, Problem, SubmissionError

MAX_FILES = 64
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 4  # folders in folders, counting the submission's own


def read_submission(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """File name -> bytes for the regular files in ``path`` (or ``path`` itself), those in
    sub-directories named by their relative path (``validations/validations.jsonl``).

    Names starting with '.' (editor and OS droppings) are ignored; links, special files,
    folders nested more than :data:`MAX_DEPTH` deep, too many files and too many bytes are
    refused, so a hostile directory cannot make the scorer read outside it or exhaust memory.
    """
    path = Path(path)
    if not path.exists():
        raise DataPerfError(f"submission {path} does not exist")
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    total = 0
    found = [(path.name, path)] if path.is_file() else _entries(path, "", problems)
    for name, entry in found:
        if entry.is_symlink():
            problems.append(Problem(name, "not-a-file", "is a link; submit plain files"))
            continue
        total += entry.stat().st_size
        if len(files) >= MAX_FILES or total > MAX_TOTAL_BYTES:
            problems.append(Problem(str(path), "too-large", f"holds more than {MAX_FILES} files "
                                    f"or {MAX_TOTAL_BYTES:,} bytes"))
            break
        files[name] = entry.read_bytes()
    if problems:
        raise SubmissionError(problems)
    if not files:
        raise SubmissionError([Problem(str(path), "empty-submission", "holds no files")])
    return files


def _entries(folder: Path, prefix: str, problems: list[Problem]) -> Iterator[tuple[str, Path]]:
    """(name, path) of each file under ``folder``, in name order; what cannot be read is
    added to ``problems``."""
    for entry in sorted(folder.iterdir()):
        name = prefix + entry.name
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() or entry.is_file():
            yield name, entry
        elif not entry.is_dir():
            problems.append(Problem(name, "not-a-file", "is a special file; submit plain "
                                    "files"))
        elif prefix.count("/") + 1 >= MAX_DEPTH:
            problems.append(Problem(name, "not-a-file", f"is a folder nested more than "
                                    f"{MAX_DEPTH} deep"))
        else:
            yield from _entries(entry, name + "/", problems)


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
