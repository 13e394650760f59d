"""Reading and writing cleaning submission files: one training row index per line.

A file ``{task}.txt`` orders *all* ``n`` training rows of a task, most suspicious first: each
line holds one 0-based row index (the ``index`` column of ``public/train.parquet``), every
index from 0 to n-1 exactly once. This is the original DataPerf debugging format. Surrounding
spaces, CRLF line ends, a UTF-8 byte order mark and trailing blank lines are accepted.

File names: ``{task}.txt``, or the original's ``{task}_{method}.txt`` (``01g317_random.txt``;
the method is letters, digits, '_', '.', '-'). A submission is one method: one file per task.
The original scores every method in its folder; here two files for one task are refused
(several-methods) and each method is evaluated as a submission of its own. The original's
run-time files ``time_{task}_{method}.txt`` are ignored with a warning.

Parsing is strict and side-effect free, and every problem is collected at once (file, line,
rule). Rules (``Problem.rule``): file-too-large, empty-file, binary-file, encoding (shared with
the selection files, :func:`dataperf.kinds.selection_files.decode_text`, and far-too-long),
not-an-index,
index-out-of-range, duplicate-index, missing-index; for the set of files
(:func:`match_order_files`): bad-method-name, ambiguous-name, several-methods, and those of
:func:`dataperf.kinds._common.match_files` (unexpected-file, missing-task).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dataperf.exceptions import Problem
from dataperf.kinds._common import match_files
from dataperf.kinds.selection_files import MAX_FILE_BYTES, decode_text, far_too_long

__all__ = ["MAX_FILE_BYTES", "OrderFiles", "decode_text", "match_order_files", "parse_order",
           "write_order"]

# At most this many lines are named one by one for a rule; the rest are counted.
MAX_LINE_PROBLEMS = 10
# Examples of indices shown in a message.
MAX_EXAMPLES = 5
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 18  # longer numbers are out of range for any task, without converting them
_METHOD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TIME_PREFIX = "time_"  # the original's run-time files: time_{task}_{method}.txt
_SUFFIX = ".txt"


@dataclass(frozen=True)
class OrderFiles:
    """The files of a submission by task: ``names[task]`` and its ``methods[task]`` (``""``
    for ``{task}.txt``), and ``ignored`` run-time files."""

    names: dict[str, str]
    methods: dict[str, str]
    ignored: tuple[str, ...]


def match_order_files(names: Iterable[str], tasks: Sequence[str], *, challenge: str,
                      problems: list[Problem]) -> OrderFiles:
    """Which file orders which task (the names in the module doc); problems are recorded."""
    claimed: dict[str, list[tuple[str, str]]] = {}
    ignored: list[str] = []
    others: list[str] = []
    for name in sorted(names):
        found = _task_of(name, tasks, problems)
        if found is None and name.startswith(_TIME_PREFIX):
            quiet: list[Problem] = []
            if _task_of(name[len(_TIME_PREFIX):], tasks, quiet) is not None:
                ignored.append(name)
                continue
        if found is None:
            others.append(name)
        elif found:
            claimed.setdefault(found[0], []).append((name, found[1]))
    for task, files in claimed.items():
        if len(files) > 1:
            methods = ", ".join(method or "(none)" for _, method in files)
            problems.append(Problem(files[0][0], "several-methods",
                                    f"and {', '.join(n for n, _ in files[1:])} are all for task "
                                    f"{task} (methods {methods}); a submission is one method "
                                    "with one file per task: evaluate each method's files on "
                                    "their own (a folder per method)"))
    # The rest (unknown names, missing tasks) as every kind reports them, with "did you mean".
    canonical = [f"{task}{_SUFFIX}" for task in claimed]
    matched = match_files([*canonical, *others], tasks,
                          patterns=[f"{{task}}{_SUFFIX}", f"{{task}}_{{{{method}}}}{_SUFFIX}"],
                          challenge=challenge, problems=problems)
    chosen = {task: claimed[task][0] for task in matched if len(claimed.get(task, ())) == 1}
    return OrderFiles({task: name for task, (name, _) in chosen.items()},
                      {task: method for task, (_, method) in chosen.items()}, tuple(ignored))


def _task_of(name: str, tasks: Sequence[str],
             problems: list[Problem]) -> tuple[str, str] | tuple[()] | None:
    """``(task, method)`` named by ``name``; ``()`` after recording why the name is bad; None
    when it names no task."""
    if not name.endswith(_SUFFIX):
        return None
    stem = name[: -len(_SUFFIX)]
    if stem in tasks:
        return stem, ""
    fits = [(task, stem[len(task) + 1:]) for task in tasks if stem.startswith(f"{task}_")]
    if not fits:
        return None
    if len(fits) > 1:
        readings = " or ".join(f"task {task} (method {method!r})" for task, method in fits)
        problems.append(Problem(name, "ambiguous-name", f"could be {readings}; rename it "
                                f"{{task}}_{{method}}{_SUFFIX} so that only one task fits"))
        return ()
    task, method = fits[0]
    if not _METHOD.fullmatch(method):
        problems.append(Problem(name, "bad-method-name",
                                f"names task {task} with the method {_clip(method)!r}; a method "
                                "name is 1 to 64 letters, digits, '_', '.', '-', starting with "
                                "a letter or digit"))
        return ()
    return task, method


def parse_order(name: str, text: str, n: int, problems: list[Problem]) -> np.ndarray | None:
    """The ordering in a decoded file: an int64 permutation of 0..n-1, or None after recording
    every problem (bad lines, indices out of range, duplicates, missing indices)."""
    if far_too_long(name, text, n, f"the task has {n:,} training rows, one index per line",
                    problems):
        return None
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
