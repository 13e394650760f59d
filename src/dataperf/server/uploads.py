"""Uploaded files, made safe: names checked, archives unpacked in memory with hard limits.

A name may not hide a path (``../``, ``/etc``), a control character, or start with a dot; an
archive (.zip, .tar, .tar.gz, .tgz) may hold only regular files, few and small enough (a
decompression bomb stops at the limit, not after filling the disk). Nothing touches the disk.
"""

from __future__ import annotations

import io
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterable

from dataperf.exceptions import Problem, SubmissionError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not acceptable as a plain file name, or None."""
    if not name or len(name) > 255:
        return "must be 1 to 255 characters long"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "must be a plain file name, without folders"
    if name.startswith("."):
        return "must not start with a dot"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "must not contain control or invisible characters"
    return None


def collect(uploads: Iterable[tuple[str, bytes]], *, max_files: int,
            max_bytes: int) -> dict[str, bytes]:
    """Name -> bytes for uploaded files, archives unpacked. Raises SubmissionError listing
    every problem (bad names, duplicates, too many or too large files)."""
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    total = 0
    for name, data in uploads:
        members = _unpack(name, data, max_files, max_bytes, problems) \
            if name.lower().endswith(ARCHIVE_SUFFIXES) else [(name, data)]
        for member, content in members:
            problem = name_problem(member)
            if problem:
                problems.append(Problem(_printable(member), "bad-file-name", problem))
            elif member in files:
                problems.append(Problem(member, "duplicate-file", "was uploaded twice"))
            else:
                files[member] = content
                total += len(content)
    if len(files) > max_files or total > max_bytes:
        problems.append(Problem("(upload)", "too-large",
                                f"at most {max_files} files and {max_bytes:,} bytes in all"))
    if not files and not problems:
        problems.append(Problem("(upload)", "empty-submission", "holds no files"))
    if problems:
        raise SubmissionError(problems)
    return files


def _printable(name: str) -> str:
    return name.encode("unicode_escape").decode("ascii")[:120] or "(empty name)"


def _unpack(name: str, data: bytes, max_files: int, max_bytes: int,
            problems: list[Problem]) -> list[tuple[str, bytes]]:
    try:
        if name.lower().endswith(".zip"):
            return _unzip(name, data, max_files, max_bytes, problems)
        return _untar(name, data, max_files, max_bytes, problems)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        problems.append(Problem(_printable(name), "bad-archive", f"cannot be read: {err}"))
        return []


def _member_name(archive: str, path: str, problems: list[Problem]) -> str | None:
    """Members live at the top or in one folder; absolute or climbing paths are refused."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith(("/", "\\")) or ".." in parts or not parts:
        problems.append(Problem(_printable(archive), "unsafe-archive",
                                f"holds {_printable(path)!r}, which points outside the archive"))
        return None
    return parts[-1]


def _unzip(name: str, data: bytes, max_files: int, max_bytes: int,
           problems: list[Problem]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = _member_name(name, info.filename, problems)
            if member is None:
                continue
            if member.startswith(".") or info.filename.startswith("__MACOSX/"):
                continue
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if is_link:
                problems.append(Problem(_printable(name), "unsafe-archive",
                                        f"holds a link {_printable(info.filename)!r}"))
                continue
            total += info.file_size
            if len(out) >= max_files or total > max_bytes:
                problems.append(Problem(_printable(name), "too-large",
                                        f"unpacks to more than {max_files} files or "
                                        f"{max_bytes:,} bytes"))
                return out
            with archive.open(info) as member_file:
                content = member_file.read(max_bytes + 1)  # never trust the declared size
            if len(content) > info.file_size:
                problems.append(Problem(_printable(name), "bad-archive", "sizes do not match"))
                return out
            out.append((member, content))
    return out


def _untar(name: str, data: bytes, max_files: int, max_bytes: int,
           problems: list[Problem]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive:
            if info.isdir():
                continue
            member = _member_name(name, info.name, problems)
            if member is None:
                continue
            if not info.isfile():
                problems.append(Problem(_printable(name), "unsafe-archive",
                                        f"holds {_printable(info.name)!r}, which is a link or "
                                        "special file"))
                continue
            if member.startswith("."):
                continue
            total += info.size
            if len(out) >= max_files or total > max_bytes:
                problems.append(Problem(_printable(name), "too-large",
                                        f"unpacks to more than {max_files} files or "
                                        f"{max_bytes:,} bytes"))
                return out
            extracted = archive.extractfile(info)
            out.append((member, extracted.read() if extracted else b""))
    return out
