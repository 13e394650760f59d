"""Uploaded files, made safe: names checked, archives unpacked in memory with hard limits.

A name may not hide a path (``../``, ``/etc``), a control character or a line break, or start
with a dot; an archive (.zip, .tar, .tar.gz, .tgz) may hold only regular files, few and small
enough (a decompression bomb stops at the limit, not after filling the disk or the memory: the
limits hold for all uploads together, and every member an archive makes the server read counts,
skipped ones too). Nothing touches the disk.
"""

from __future__ import annotations

import io
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

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
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
           for c in name):
        return "must not contain control or invisible characters or line breaks"
    return None


@dataclass
class _Budget:
    """The limits of all uploads together, and what they used: files, bytes, archive entries."""

    max_files: int
    max_bytes: int
    files: int = 0
    size: int = 0
    entries: int = 0

    @property
    def max_entries(self) -> int:  # folders, links and skipped members count here
        return 4 * self.max_files + 64

    def over(self) -> bool:
        return self.files > self.max_files or self.size > self.max_bytes \
            or self.entries > self.max_entries

    def problem(self, where: str) -> Problem:
        return Problem(where, "too-large", f"at most {self.max_files} files and "
                       f"{self.max_bytes:,} bytes in all")


def collect(uploads: Iterable[tuple[str, bytes]], *, max_files: int,
            max_bytes: int) -> dict[str, bytes]:
    """Name -> bytes for uploaded files, archives unpacked. Raises SubmissionError listing
    every problem (bad names, duplicates, too many or too large files)."""
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    budget = _Budget(max_files, max_bytes)
    for name, data in uploads:
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            members = _unpack(name, data, budget, problems)
        else:
            budget.files += 1
            budget.size += len(data)
            members = [(name, data)]
        for member, content in members:
            problem = name_problem(member)
            if problem:
                problems.append(Problem(_printable(member), "bad-file-name", problem))
            elif member in files:
                problems.append(Problem(member, "duplicate-file", "was uploaded twice"))
            else:
                files[member] = content
        if budget.over():
            if not any(p.rule == "too-large" for p in problems):
                problems.append(budget.problem("(upload)"))
            break  # read nothing more
    if not files and not problems:
        problems.append(Problem("(upload)", "empty-submission", "holds no files"))
    if problems:
        raise SubmissionError(problems)
    return files


def _printable(name: str) -> str:
    """``name`` for messages: unprintable characters escaped, at most 120 characters."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                    for c in name)
    return shown[:120] or "(empty name)"


def _unpack(name: str, data: bytes, budget: _Budget,
            problems: list[Problem]) -> list[tuple[str, bytes]]:
    try:
        if name.lower().endswith(".zip"):
            return _unzip(name, data, budget, problems)
        return _untar(name, data, budget, problems)
    except Exception as err:  # hostile bytes raise more than the documented errors:
        # zlib.error, NotImplementedError (compression method), RuntimeError (encrypted), ...
        problems.append(Problem(_printable(name), "bad-archive",
                                f"cannot be read: {_printable(str(err) or type(err).__name__)}"))
        return []


def _member_name(archive: str, path: str, problems: list[Problem]) -> str | None:
    """Members live at the top or in folders; absolute or climbing paths are refused."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith(("/", "\\")) or ".." in parts or not parts:
        problems.append(Problem(_printable(archive), "unsafe-archive",
                                f"holds {_printable(path)!r}, which points outside the archive"))
        return None
    return parts[-1]


def _too_many(name: str, budget: _Budget, problems: list[Problem]) -> bool:
    budget.entries += 1
    if budget.entries > budget.max_entries:
        problems.append(Problem(_printable(name), "too-large",
                                f"holds more than {budget.max_entries} entries"))
        return True
    return False


def _unzip(name: str, data: bytes, budget: _Budget,
           problems: list[Problem]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if _too_many(name, budget, problems):
                return out
            if info.filename.endswith("/"):  # a folder (ZipInfo.is_dir fails on '')
                continue
            member = _member_name(name, info.filename, problems)
            if member is None:
                continue
            if member.startswith(".") or info.filename.startswith("__MACOSX/"):
                continue  # never decompressed: zip members are read one by one
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if is_link:
                problems.append(Problem(_printable(name), "unsafe-archive",
                                        f"holds a link {_printable(info.filename)!r}"))
                continue
            if info.flag_bits & 0x1:
                problems.append(Problem(_printable(name), "bad-archive",
                                        f"holds {_printable(info.filename)!r} encrypted; "
                                        "archive it without a password"))
                continue
            budget.files += 1
            budget.size += info.file_size
            if budget.over():
                problems.append(_unpacked_too_large(name, budget))
                return out
            with archive.open(info) as member_file:
                content = member_file.read(info.file_size + 1)  # never trust the declared size
            if len(content) != info.file_size:
                problems.append(Problem(_printable(name), "bad-archive", "sizes do not match"))
                return out
            out.append((member, content))
    return out


def _untar(name: str, data: bytes, budget: _Budget,
           problems: list[Problem]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        while (info := archive.next()) is not None:
            if _too_many(name, budget, problems):
                return out
            # A compressed tar is read as a stream: every member's data is decompressed on
            # the way to the next one, skipped members' too, so all of it counts.
            budget.size += max(info.size, 0)
            if budget.size > budget.max_bytes:
                problems.append(_unpacked_too_large(name, budget))
                return out
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
            budget.files += 1
            if budget.over():
                problems.append(_unpacked_too_large(name, budget))
                return out
            extracted = archive.extractfile(info)
            content = extracted.read(info.size + 1) if extracted else b""
            if len(content) != info.size:
                problems.append(Problem(_printable(name), "bad-archive", "sizes do not match"))
                return out
            out.append((member, content))
    return out


def _unpacked_too_large(name: str, budget: _Budget) -> Problem:
    return Problem(_printable(name), "too-large", f"unpacks to more than {budget.max_files} "
                   f"files or {budget.max_bytes:,} bytes (all uploads together)")
