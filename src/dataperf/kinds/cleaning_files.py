"""Reading and writing cleaning submission files: one training row index per line.

A file ``{task}.txt`` orders *all* ``n`` training rows of a task, most suspicious first: each
line holds one 0-based row index (the ``index`` column of ``public/train.parquet``), every
index from 0 to n-1 exactly once. This is the original DataPerf debugging format. Surrounding
spaces, CRLF line ends, a UTF-8 byte order mark and trailing blank lines are accepted.

Parsing is strict and side-effect free, and every problem is collected at once (file, line,
rule). Rules (``Problem.rule``): file-too-large, empty-file, binary-file, encoding (shared with
the selection files, :func:`dataperf.kinds.selection_files.decode_text`), not-an-index,
index-out-of-range, duplicate-index, missing-index; for the set of files
(:func:`dataperf.kinds._common.match_files`): unexpected-file, missing-task,
ambiguous-task-file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from dataperf.exceptions import Problem
from dataperf.kinds.selection_files import MAX_FILE_BYTES, decode_text

__all__ = ["MAX_FILE_BYTES", "decode_text", "parse_order", "write_order"]

# At most this many lines are named one by one for a rule; the rest are counted.
MAX_LINE_PROBLEMS = 10
# Examples of indices shown in a message.
MAX_EXAMPLES = 5
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 18  # longer numbers are out of range for any task, without converting them


def parse_order(name: str, text: str, n: int, problems: list[Problem]) -> np.ndarray | None:
    """The ordering in a decoded file: an int64 permutation of 0..n-1, or None after recording
    every problem (bad lines, indices out of range, duplicates, missing indices)."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    found: list[Problem] = []
    bad_lines: list[int] = []
    values: list[int] = []
    value_lines: list[int] = []
    out_of_range: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        cell = line.strip()
        if not _INTEGER.fullmatch(cell):
            bad_lines.append(number)
            if len(bad_lines) <= MAX_LINE_PROBLEMS:
                shown = "is blank" if not cell else f"has {_clip(cell)!r}"
                found.append(Problem(name, "not-an-index",
                                     f"{shown}; each line must be one training row index "
                                     f"(an integer from 0 to {n - 1})", number))
            continue
        digits = cell.lstrip("+-").lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS or not 0 <= (value := int(cell)) < n:
            out_of_range.append((number, cell))
            continue
        values.append(value)
        value_lines.append(number)
    if len(bad_lines) > MAX_LINE_PROBLEMS:
        rest = bad_lines[MAX_LINE_PROBLEMS:]
        found.append(Problem(name, "not-an-index",
                             f"has {len(rest):,} more line(s) that are not a row index (lines "
                             f"{_listing(rest)})", rest[0]))
    if out_of_range:
        found.append(Problem(name, "index-out-of-range",
                             f"has {len(out_of_range):,} index(es) outside 0..{n - 1} (the task "
                             f"has {n:,} training rows): "
                             + _listing([f"{_clip(v)} (line {ln})" for ln, v in out_of_range]),
                             out_of_range[0][0]))
    order = np.asarray(values, dtype=np.int64)
    first_seen = np.full(max(n, 0), -1, dtype=np.int64)
    repeats: dict[int, int] = {}
    for value, number in zip(values, value_lines, strict=True):
        if first_seen[value] >= 0:
            repeats.setdefault(value, number)
        else:
            first_seen[value] = number
    if repeats:
        found.append(Problem(name, "duplicate-index",
                             f"lists {len(repeats):,} index(es) more than once: "
                             + _listing([f"{v} (line {ln})" for v, ln in repeats.items()]),
                             next(iter(repeats.values()))))
    missing = np.flatnonzero(first_seen < 0)
    if len(missing):
        found.append(Problem(name, "missing-index",
                             f"leaves out {len(missing):,} of the {n:,} training row indices "
                             f"({_listing(missing.tolist())}); the file must order every row "
                             f"0..{n - 1} exactly once"))
    if found:
        problems.extend(found)
        return None
    return order


def write_order(order: Iterable[int]) -> bytes:
    """A submission file: one index per line."""
    return "".join(f"{int(i)}\n" for i in order).encode("ascii")


def _listing(items: Sequence[object]) -> str:
    shown = ", ".join(str(x) for x in items[:MAX_EXAMPLES])
    more = f" and {len(items) - MAX_EXAMPLES:,} more" if len(items) > MAX_EXAMPLES else ""
    return shown + more


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def files_for(tasks: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """Submission files ``{task}.txt`` for orderings by task."""
    return {f"{task}.txt": write_order(order) for task, order in tasks.items()}
