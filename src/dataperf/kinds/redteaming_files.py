"""Red-teaming records and their files: attacks (a prompt, its image, the participant's
annotations) and validations (one rater's answers about one attack).

Attack files (a submission): JSON Lines ``*.jsonl`` (one object per line) or CSV ``*.csv`` (a
header naming the fields; list fields hold values separated by ``;``), with the fields

    id (required), prompt (required), image (a file in the submission's ``images.zip``) or
    image_id (an image the platform generated), submitter, round, model, timestamp (ms since
    1970, or ISO 8601), rewritten_prompt, attack_modes, harm_types, targets (lists of the
    vocabulary's values), attack_mode_other, harm_type_other, target_other (free text)

and the released Adversarial Nibbler JSON files, unchanged (:mod:`.redteaming_released`).
Validation files: ``*.jsonl`` or ``*.csv`` with the fields

    attack_id (required), annotator, text_safety, image_safety (safe, unsafe or unsure; the
    released spellings too), attack_modes, harm_types, targets, answer_time_ms, question_id,
    and the free-text reasons of :data:`REASONS`

or the released JSON files (their ``validation`` lists). Vocabulary values may be given whole
(``text_attack_coded_language``) or without their question's prefix (``coded_language``).

Parsing is strict and side-effect free; every problem is collected with its file, line and
field. Rules (``Problem.rule``): the shared file rules (file-too-large, empty-file, binary-file,
encoding), bad-json, bad-json-shape, bad-csv, unknown-field, missing-field, bad-value,
unknown-value, duplicate-id, too-many-records, image-and-image-id, no-image; images
(:mod:`.redteaming_images`): bad-zip, missing-image, bad-image, image-too-large.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from dataperf.exceptions import Problem
from dataperf.kinds.selection_files import decode_text

Answer = Literal["safe", "unsafe", "unsure"]
#: The annotation questions shared by attacks and validations, with their released prefixes.
QUESTIONS: dict[str, str] = {
    "attack_modes": "text_attack_",
    "harm_types": "image_failure_",
    "targets": "image_target_",
}
#: The free-text fields of a validation (the released names end in ``_text``).
REASONS = ("text_attack_other_reason", "text_other_reason", "unsure_image_reason",
           "image_safe_other_reason", "image_target_other_reason", "image_failure_other_reason",
           "final_comments")
# Every spelling of a safety answer seen in the released rounds, and ours.
_SAFETY = {
    "text_safety": {"safe": "safe", "unsafe": "unsafe", "unsure": "unsure",
                    "text_safe": "safe", "text_unsafe": "unsafe", "text_other": "unsure"},
    "image_safety": {"safe": "safe", "unsafe": "unsafe", "unsure": "unsure",
                     "image_safe": "safe", "image_unsafe": "unsafe",
                     "unsure_image_safe": "unsure", "image_unsure_safe": "unsure"},
}
ATTACK_FIELDS = ("id", "prompt", "image", "image_id", "submitter", "round", "model",
                 "timestamp", "rewritten_prompt", *QUESTIONS, "attack_mode_other",
                 "harm_type_other", "target_other")
VALIDATION_FIELDS = ("attack_id", "annotator", "text_safety", "image_safety", *QUESTIONS,
                     "answer_time_ms", "question_id", *REASONS)
MAX_RECORDS = 50_000
MAX_TEXT = 4_000  # characters of a prompt or a free-text field
MAX_PROBLEMS_PER_RULE = 10
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# The allowed values of each question; None accepts every value (reading released data, from
# which a vocabulary is made).
Vocabulary = Mapping[str, frozenset[str]] | None


@dataclass(frozen=True)
class Attack:
    """One submitted example: a prompt, the image it made, and what the participant says of it."""

    attack_id: str
    prompt: str
    submitter: str | None = None
    round: str | None = None
    image: str | None = None  # a file of the submission's images.zip
    image_id: str | None = None  # an image the platform generated (released: hashed_filename)
    model: str | None = None
    timestamp_ms: int | None = None
    rewritten_prompt: str = ""
    attack_modes: tuple[str, ...] = ()
    harm_types: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    attack_mode_other: str = ""
    harm_type_other: str = ""
    target_other: str = ""

    def claimed(self, question: str) -> tuple[str, ...]:
        return tuple(getattr(self, question))


@dataclass(frozen=True)
class Validation:
    """One rater's answers about one attack."""

    attack_id: str
    annotator: str = ""
    text_safety: Answer | None = None  # None: not answered
    image_safety: Answer | None = None
    attack_modes: tuple[str, ...] = ()
    harm_types: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    answer_time_ms: int | None = None
    question_id: str = ""
    reasons: Mapping[str, str] = field(default_factory=dict)

    def marked(self, question: str) -> tuple[str, ...]:
        return tuple(getattr(self, question))


class Problems:
    """Problems of one parse, at most :data:`MAX_PROBLEMS_PER_RULE` named per file and rule
    (the rest are counted in one closing problem)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.total = 0  # every problem added, named or only counted
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, file: str, rule: str, message: str, line: int | None = None,
            ids: tuple[str, ...] = ()) -> None:
        self.total += 1
        key = (file, rule)
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._counts[key] <= MAX_PROBLEMS_PER_RULE:
            self.problems.append(Problem(file, rule, message, line, ids))

    def close(self) -> None:
        for (file, rule), count in self._counts.items():
            if count > MAX_PROBLEMS_PER_RULE:
                self.problems.append(Problem(file, rule, f"and {count - MAX_PROBLEMS_PER_RULE} "
                                             f"more records break this rule"))
        self._counts.clear()


# Values -------------------------------------------------------------------------------------

# How a list field is given: a JSON list, a CSV cell, a released list. None: malformed.
Splitter = Callable[[Any], list[Any] | None]


def json_list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None



def canonical_value(question: str, value: str, vocabulary: Vocabulary) -> str | None:
    """The vocabulary's spelling of ``value`` for ``question`` (given whole or without its
    prefix), or None if it is not in the vocabulary."""
    value = value.strip()
    if vocabulary is None:
        return value or None
    known = vocabulary.get(question, frozenset())
    if value in known:
        return value
    prefixed = QUESTIONS[question] + value
    return prefixed if prefixed in known else None


def released_list(value: Any) -> list[str] | None:
    """A released list answer: a list of strings, with the quirk that some rows hold a word
    split into its characters (``["n", "o", "_", ...]`` for ``"no_response"``); such a list,
    and the answer "no_response", mean no answer."""
    if not isinstance(value, list):
        return None
    items = [str(item) for item in value]
    if items and all(len(item) == 1 for item in items):
        items = ["".join(items)]
    return [item for item in items if item != "no_response"]


def is_none_value(value: str) -> bool:
    """The vocabulary's "none" answers (``text_attack_none``, ``image_target_none``)."""
    return value.endswith("_none")


def safety_answer(question: str, value: Any) -> Answer | Literal[False] | None:
    """A safety answer in our words; None when empty; False when it is not a known answer."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None if not value else False
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return False
    answer = _SAFETY[question].get(value.strip().lower())
    return answer if answer is not None else False  # type: ignore[return-value]


# Records ------------------------------------------------------------------------------------


class RecordReader:
    """Turns raw records (dicts of JSON values, or CSV strings) into attacks or validations,
    recording problems as ``file, line N: field ...``."""

    def __init__(self, name: str, vocabulary: Vocabulary, problems: Problems):
        self.name = name
        self.vocabulary = vocabulary
        self.problems = problems

    def _bad(self, line: int | None, rule: str, message: str, ids: tuple[str, ...] = ()) -> None:
        self.problems.add(self.name, rule, message, line, ids)

    def text(self, record: Mapping[str, Any], key: str, line: int | None, *,
             required: bool = False) -> str:
        value = record.get(key)
        if value is None or value == "":
            if required:
                self._bad(line, "missing-field", f"field {key!r} is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            self._bad(line, "bad-value", f"field {key!r} must be text, not "
                      f"{type(value).__name__}")
            return ""
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            self._bad(line, "bad-value", f"field {key!r} has {len(text):,} characters; the "
                      f"limit is {MAX_TEXT:,}")
            return ""
        if required and not text:
            self._bad(line, "missing-field", f"field {key!r} is empty")
        return text

    def identifier(self, record: Mapping[str, Any], key: str, line: int | None, *,
                   required: bool = False) -> str | None:
        text = self.text(record, key, line, required=required)
        if not text:
            return None
        if not _ID.match(text):
            self._bad(line, "bad-value", f"field {key!r} is {text[:80]!r}; IDs are 1-64 "
                      "letters, digits, '_', '.', ':' or '-'")
            return None
        return text

    def integer(self, record: Mapping[str, Any], key: str, line: int | None) -> int | None:
        value = record.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,15}\s*", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
            return value
        self._bad(line, "bad-value", f"field {key!r} must be a non-negative integer, got "
                  f"{str(value)[:40]!r}")
        return None

    def timestamp(self, record: Mapping[str, Any], key: str, line: int | None) -> int | None:
        value = record.get(key)
        if isinstance(value, str) and not value.strip().isdigit() and value.strip():
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                self._bad(line, "bad-value", f"field {key!r} must be milliseconds since 1970 "
                          f"or an ISO 8601 time, got {value[:40]!r}")
                return None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
        return self.integer(record, key, line)

    def values(self, record: Mapping[str, Any], question: str, line: int | None, *,
               split: Splitter) -> tuple[str, ...]:
        raw = record.get(question)
        if raw is None or raw == "":
            return ()
        items = split(raw)
        if items is None or not all(isinstance(item, str) for item in items):
            self._bad(line, "bad-value", f"field {question!r} must be a list of values")
            return ()
        found: list[str] = []
        unknown: list[str] = []
        for value in items:
            canonical = canonical_value(question, value, self.vocabulary)
            if canonical is None:
                unknown.append(value)
            elif canonical not in found:
                found.append(canonical)
        if unknown:
            known = ", ".join(sorted(v.removeprefix(QUESTIONS[question])
                                     for v in (self.vocabulary or {}).get(question, ())))
            self._bad(line, "unknown-value", f"field {question!r} has value(s) "
                      f"{', '.join(map(repr, unknown[:5]))} outside the vocabulary ({known})")
        return tuple(found)

    def safety(self, record: Mapping[str, Any], key: str, line: int | None) -> Answer | None:
        answer = safety_answer(key, record.get(key))
        if answer is False:
            self._bad(line, "bad-value", f"field {key!r} must be safe, unsafe or unsure, got "
                      f"{str(record.get(key))[:40]!r}")
            return None
        return answer

    def unknown_fields(self, record: Mapping[str, Any], allowed: Sequence[str],
                       line: int | None) -> None:
        extra = [key for key in record if key not in allowed]
        if extra:
            self._bad(line, "unknown-field", f"has unknown field(s) "
                      f"{', '.join(map(repr, extra[:5]))}; the fields are {', '.join(allowed)}")

    def attack(self, record: Mapping[str, Any], line: int | None,
               split: Splitter = json_list) -> Attack | None:
        before = self.problems.total
        self.unknown_fields(record, ATTACK_FIELDS, line)
        attack_id = self.identifier(record, "id", line, required=True)
        prompt = self.text(record, "prompt", line, required=True)
        image = self.text(record, "image", line) or None
        image_id = self.text(record, "image_id", line) or None
        if image and image_id:
            self._bad(line, "image-and-image-id", "gives both 'image' and 'image_id'; an "
                      "attack has one image: a file in images.zip or a generated image's id")
        elif not image and not image_id:
            self._bad(line, "no-image", "gives no image: name a file of images.zip in "
                      "'image', or a generated image in 'image_id'")
        attack = Attack(
            attack_id=attack_id or "",
            prompt=prompt,
            submitter=self.identifier(record, "submitter", line),
            round=self.identifier(record, "round", line),
            image=image,
            image_id=image_id,
            model=self.text(record, "model", line) or None,
            timestamp_ms=self.timestamp(record, "timestamp", line),
            rewritten_prompt=self.text(record, "rewritten_prompt", line),
            attack_modes=self.values(record, "attack_modes", line, split=split),
            harm_types=self.values(record, "harm_types", line, split=split),
            targets=self.values(record, "targets", line, split=split),
            attack_mode_other=self.text(record, "attack_mode_other", line),
            harm_type_other=self.text(record, "harm_type_other", line),
            target_other=self.text(record, "target_other", line),
        )
        return attack if self.problems.total == before and attack_id else None

    def validation(self, record: Mapping[str, Any], line: int | None,
                   split: Splitter = json_list) -> Validation | None:
        before = self.problems.total
        self.unknown_fields(record, VALIDATION_FIELDS, line)
        attack_id = self.identifier(record, "attack_id", line, required=True)
        validation = Validation(
            attack_id=attack_id or "",
            annotator=self.text(record, "annotator", line),
            text_safety=self.safety(record, "text_safety", line),
            image_safety=self.safety(record, "image_safety", line),
            attack_modes=self.values(record, "attack_modes", line, split=split),
            harm_types=self.values(record, "harm_types", line, split=split),
            targets=self.values(record, "targets", line, split=split),
            answer_time_ms=self.integer(record, "answer_time_ms", line),
            question_id=self.text(record, "question_id", line),
            reasons={key: text for key in REASONS if (text := self.text(record, key, line))},
        )
        return validation if self.problems.total == before and attack_id else None


# Files ---------------------------------------------------------------------------------------


def load_json(name: str, text: str, problems: Problems, line: int | None = None) -> Any:
    """A JSON document, or None after recording why it is not one (too deep counts too)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = line if line is not None else err.lineno
        problems.add(name, "bad-json", f"is not valid JSON: {err.msg} (column {err.colno})",
                     where)
    except RecursionError:
        problems.add(name, "bad-json", "is nested too deeply to be a record", line)
    return None


def jsonl_records(name: str, text: str, problems: Problems) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        if count > MAX_RECORDS:
            problems.add(name, "too-many-records", f"holds more than {MAX_RECORDS:,} records")
            return
        record = load_json(name, line, problems, number)
        if record is None:
            continue
        if not isinstance(record, dict):
            problems.add(name, "bad-json-shape", "must hold one JSON object per line",
                         number)
            continue
        yield number, record


def csv_records(name: str, text: str, required: str, allowed: Sequence[str],
                problems: Problems) -> Iterator[tuple[int, dict]]:
    """(line number, {field: text}) for each row of a CSV file with a header of ``allowed``
    fields that names ``required``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip() for cell in next(reader)]
    except (StopIteration, csv.Error):
        problems.add(name, "bad-csv", "has no header line", 1)
        return
    unknown = [cell for cell in header if cell not in allowed]
    if unknown or required not in header or len(set(header)) != len(header):
        problems.add(name, "bad-csv", f"has header {','.join(header)[:200]!r}; it must name "
                     f"{required!r} and only the fields {', '.join(allowed)}, each once", 1)
        return
    count = 0
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            if count > MAX_RECORDS:
                problems.add(name, "too-many-records", f"holds more than {MAX_RECORDS:,} rows")
                return
            if len(row) != len(header):
                problems.add(name, "bad-csv", f"has {len(row)} fields; the header has "
                             f"{len(header)}", reader.line_num)
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))
    except csv.Error as err:
        problems.add(name, "bad-csv", f"is not valid CSV: {err}", reader.line_num)


def split_csv_list(value: Any) -> list[str] | None:
    """A CSV list cell: values separated by ';'."""
    return [part.strip() for part in str(value).split(";") if part.strip()]


def duplicate_ids(name: str, ids: Sequence[str], problems: Problems) -> None:
    seen: set[str] = set()
    repeated: list[str] = []
    for attack_id in ids:
        if attack_id in seen and attack_id not in repeated:
            repeated.append(attack_id)
        seen.add(attack_id)
    if repeated:
        problems.add(name, "duplicate-id", f"{len(repeated)} attack id(s) appear more than once",
                     ids=tuple(repeated))


def read_records(name: str, data: bytes, *, kind: Literal["attacks", "validations"],
                 vocabulary: Vocabulary, problems: Problems) -> list[Any]:
    """The attacks or validations of one ``.jsonl`` or ``.csv`` file (records with problems
    are left out; the problems say why)."""
    text = decode_text(name, data, problems.problems)
    if text is None:
        return []
    reader = RecordReader(name, vocabulary, problems)
    make = reader.attack if kind == "attacks" else reader.validation
    if name.lower().endswith(".jsonl"):
        found = [make(record, line) for line, record in jsonl_records(name, text, problems)]
    else:
        required, allowed = (("id", ATTACK_FIELDS) if kind == "attacks"
                             else ("attack_id", VALIDATION_FIELDS))
        found = [make(record, line, split_csv_list)
                 for line, record in csv_records(name, text, required, allowed, problems)]
    return [record for record in found if record is not None]


# Writing --------------------------------------------------------------------------------------


def attack_record(attack: Attack) -> dict[str, Any]:
    """The JSON Lines record of an attack (empty fields left out)."""
    record: dict[str, Any] = {"id": attack.attack_id, "prompt": attack.prompt}
    optional: dict[str, Any] = {
        "image": attack.image, "image_id": attack.image_id, "submitter": attack.submitter,
        "round": attack.round, "model": attack.model, "timestamp": attack.timestamp_ms,
        "rewritten_prompt": attack.rewritten_prompt,
        **{question: list(attack.claimed(question)) for question in QUESTIONS},
        "attack_mode_other": attack.attack_mode_other,
        "harm_type_other": attack.harm_type_other, "target_other": attack.target_other,
    }
    record.update({k: v for k, v in optional.items() if v not in (None, "", [])})
    return record


def validation_record(validation: Validation) -> dict[str, Any]:
    record: dict[str, Any] = {"attack_id": validation.attack_id}
    optional: dict[str, Any] = {
        "annotator": validation.annotator, "text_safety": validation.text_safety,
        "image_safety": validation.image_safety,
        **{question: list(validation.marked(question)) for question in QUESTIONS},
        "answer_time_ms": validation.answer_time_ms, "question_id": validation.question_id,
        **validation.reasons,
    }
    record.update({k: v for k, v in optional.items() if v not in (None, "", [])})
    return record


def write_jsonl(records: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
