"""Reading and writing selection submission files: CSV ``ID,label``, JSON ``{ID: label}``, or
keyword sets ``{"targets": {word: [ID, ...]}, "nontargets": [ID, ...]}``.

Parsing is strict and side-effect free. Every problem found in every file is collected (file,
line, rule, offending IDs) so that a participant fixes everything in one round trip.
Rules (``Problem.rule``): file-too-large, empty-file, binary-file, encoding, far-too-long,
bad-header, malformed-row, bad-json, bad-json-shape, missing-id, bad-label, duplicate-id,
unknown-target.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from dataperf.exceptions import Problem

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class LabelledRows:
    """The rows of one submission file, in file order, with their line numbers."""

    ids: tuple[str, ...]
    labels: tuple[int, ...]  # class indices
    lines: tuple[int, ...]


@dataclass(frozen=True)
class KeywordRows(LabelledRows):
    """The rows of a keyword-sets file, and its target words in file order (with those whose
    list is empty)."""

    words: tuple[str, ...] = ()


def nontarget_word(clip: str) -> str:
    """The word file of a nontarget clip in the original layout: the first path component of
    its ID (``cat/common_voice_id_12345.wav`` -> ``cat``), "" for none."""
    parts = PurePosixPath(clip).parts
    return parts[0] if parts else ""


def decode_text(name: str, data: bytes, problems: list[Problem]) -> str | None:
    """UTF-8 text of a submission file, or None after recording why it is unreadable."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(
            Problem(name, "file-too-large", f"is {len(data):,} bytes; the limit is "
                    f"{MAX_FILE_BYTES:,} bytes")
        )
        return None
    if b"\x00" in data:
        problems.append(Problem(name, "binary-file", "is a binary file, not CSV or JSON text"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.append(
            Problem(name, "encoding", f"is not UTF-8 text (undecodable byte at offset "
                    f"{err.start}); save it as UTF-8")
        )
        return None
    if not text.strip():
        problems.append(Problem(name, "empty-file", "is empty"))
        return None
    return text


def far_too_long(name: str, text: str, allowed: int, what: str,
                 problems: list[Problem]) -> bool:
    """Whether a file has far more lines than ``allowed`` (twice as many and 1,000 more),
    recorded as its only problem: such a file is not read line by line, so that rejecting it
    costs one scan of its bytes however it is made."""
    lines = text.count("\n") + (not text.endswith("\n"))
    if lines <= 2 * allowed + 1000:
        return False
    problems.append(Problem(name, "far-too-long", f"has {lines:,} lines; {what} (so the rest "
                            "of the file was not checked)"))
    return True


def parse_csv(
    name: str,
    text: str,
    *,
    id_column: str,
    label_column: str,
    classes: Sequence[str],
    problems: list[Problem],
) -> LabelledRows:
    """Parse ``id_column,label_column`` CSV (columns in either order, nothing else)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        problems.append(Problem(name, "bad-header", "has no header line", line=1))
        return LabelledRows((), (), ())
    stripped = [cell.strip() for cell in header]
    if sorted(stripped) != sorted([id_column, label_column]):
        problems.append(
            Problem(name, "bad-header", f"has header {','.join(stripped)!r}; expected "
                    f"{id_column},{label_column}", line=1)
        )
        return LabelledRows((), (), ())
    id_at, label_at = stripped.index(id_column), stripped.index(label_column)
    class_index = {label: i for i, label in enumerate(classes)}
    ids: list[str] = []
    labels: list[int] = []
    lines: list[int] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                problems.append(
                    Problem(name, "malformed-row", f"has {len(row)} fields; expected 2", line)
                )
                continue
            image_id, label = row[id_at].strip(), row[label_at].strip()
            _check_row(name, line, image_id, label, class_index, classes, problems)
            if image_id and label in class_index:
                ids.append(image_id)
                labels.append(class_index[label])
                lines.append(line)
    except csv.Error as err:
        problems.append(Problem(name, "malformed-row", f"is not valid CSV: {err}",
                                reader.line_num))
    return LabelledRows(tuple(ids), tuple(labels), tuple(lines))


def load_json(name: str, text: str, problems: list[Problem], **options: Any
              ) -> tuple[bool, Any]:
    """(True, the JSON document of a file), or (False, None) after recording why it has none
    (a document nested too deeply for the parser is one such)."""
    try:
        return True, json.loads(text, **options)
    except json.JSONDecodeError as err:
        problems.append(Problem(name, "bad-json", f"is not valid JSON: {err.msg} (column "
                                f"{err.colno})", line=err.lineno))
    except RecursionError:
        problems.append(Problem(name, "bad-json", "is nested too deeply to be a submission "
                                "file"))
    return False, None


def parse_json(
    name: str, text: str, *, classes: Sequence[str], problems: list[Problem]
) -> LabelledRows:
    """Parse a JSON object ``{"ID": label, ...}``; labels are ints or strings of a class."""
    pairs: list[tuple[str, Any]] = []

    def keep_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs.clear()
        pairs.extend(items)
        return dict(items)

    parsed, document = load_json(name, text, problems, object_pairs_hook=keep_pairs)
    if not parsed:
        return LabelledRows((), (), ())
    if not isinstance(document, dict) or any(isinstance(v, dict) for _, v in pairs):
        problems.append(Problem(name, "bad-json-shape",
                                'must be one JSON object mapping each ID to its label, '
                                'e.g. {"a1b2": 1, "c3d4": 0}'))
        return LabelledRows((), (), ())
    class_index = {label: i for i, label in enumerate(classes)}
    ids: list[str] = []
    labels: list[int] = []
    for image_id, value in pairs:
        label = _json_label(value)
        _check_row(name, None, image_id.strip(), label, class_index, classes, problems)
        if image_id.strip() and label in class_index:
            ids.append(image_id.strip())
            labels.append(class_index[label])
    return LabelledRows(tuple(ids), tuple(labels), tuple(0 for _ in ids))


def parse_keywords(name: str, text: str, *, classes: Sequence[str],
                   problems: list[Problem]) -> KeywordRows:
    """Parse keyword sets ``{"targets": {word: [ID, ...]}, "nontargets": [ID, ...]}``.

    ``classes[0]`` is the background class (the ``nontargets`` list), the others the target
    words; a row's label is the index of its word in ``classes``, whatever the order of the
    words in the file. Rows come in file order: each word's IDs, then the nontargets.
    """
    parsed, document = load_json(name, text, problems)
    if not parsed:
        return KeywordRows((), (), ())
    shape = ('must be one JSON object {"targets": {"word": ["ID", ...], ...}, '
             '"nontargets": ["ID", ...]}')
    if not isinstance(document, dict) or set(document) != {"targets", "nontargets"}:
        found = ", ".join(map(repr, document)) if isinstance(document, dict) else "no object"
        problems.append(Problem(name, "bad-json-shape", f"{shape} (found keys: {found})"))
        return KeywordRows((), (), ())
    targets, nontargets = document["targets"], document["nontargets"]
    lists = [(word, ids) for word, ids in targets.items()] if isinstance(targets, dict) else []
    lists.append((classes[0], nontargets))
    if not isinstance(targets, dict) or any(not isinstance(ids, list) or
                                            not all(isinstance(i, str) for i in ids)
                                            for _, ids in lists):
        problems.append(Problem(name, "bad-json-shape", f"{shape}: every list must hold "
                                "ID strings"))
        return KeywordRows((), (), ())
    class_index = {word: i for i, word in enumerate(classes)}
    unknown = [word for word in targets if word not in class_index or word == classes[0]]
    if unknown:
        problems.append(Problem(name, "unknown-target",
                                f"names target word(s) {', '.join(map(repr, unknown))} that are "
                                f"not targets of this task; its targets: "
                                f"{', '.join(classes[1:])}", ids=tuple(unknown)))
    ids: list[str] = []
    labels: list[int] = []
    for word, listed in lists:
        if word not in unknown:
            for clip in listed:
                if not clip.strip():
                    problems.append(Problem(name, "missing-id", f"lists an empty ID under "
                                            f"{word!r}"))
                ids.append(clip.strip())
                labels.append(class_index[word])
    return KeywordRows(tuple(ids), tuple(labels), tuple(0 for _ in ids), tuple(targets))


def _json_label(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return repr(value)
    return str(value)


def _check_row(
    name: str,
    line: int | None,
    image_id: str,
    label: str,
    class_index: dict[str, int],
    classes: Sequence[str],
    problems: list[Problem],
) -> None:
    if not image_id:
        problems.append(Problem(name, "missing-id", "has a row without an ID", line))
    if label not in class_index:
        allowed = " or ".join(classes)
        problems.append(
            Problem(name, "bad-label", f"has label {label!r}; labels must be {allowed}", line,
                    (image_id,) if image_id else ())
        )


def duplicate_problems(name: str, rows: LabelledRows) -> list[Problem]:
    """One problem naming every ID listed more than once (with the line of a repeat)."""
    seen: set[str] = set()
    repeated: dict[str, int] = {}
    for image_id, line in zip(rows.ids, rows.lines, strict=True):
        if image_id in seen:
            repeated.setdefault(image_id, line)
        seen.add(image_id)
    if not repeated:
        return []
    first_line = next(iter(repeated.values())) or None
    return [Problem(name, "duplicate-id", f"lists {len(repeated)} ID(s) more than once",
                    first_line, tuple(repeated))]


def write_csv(ids: Sequence[str], labels: Sequence[str], *, id_column: str,
              label_column: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_column, label_column])
    writer.writerows(zip(ids, labels, strict=True))
    return buffer.getvalue().encode("utf-8")


def write_json(ids: Sequence[str], labels: Sequence[str]) -> bytes:
    document = {i: int(label) if label.isdigit() else label
                for i, label in zip(ids, labels, strict=True)}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def write_keywords(ids: Sequence[str], words: Sequence[str], *, background: str) -> bytes:
    """Keyword sets with each ID under its word (``background`` words go to ``nontargets``);
    words in sorted order, IDs in the given order."""
    targets: dict[str, list[str]] = {}
    nontargets: list[str] = []
    for clip, word in zip(ids, words, strict=True):
        (nontargets if word == background else targets.setdefault(word, [])).append(clip)
    document = {"targets": dict(sorted(targets.items())), "nontargets": nontargets}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")
