"""The released Adversarial Nibbler JSON files (``submitted/*.json``), read unchanged.

A file is a pandas "columns"-oriented frame: ``{column: {row key: value}}`` with the columns
``prompt``, ``hashed_filename``, ``submission_annotations``, ``validation`` and the time,
which is ``timestamp`` in round 1 and ``submitted_timestamp`` later (ms since 1970). The quirks
survived here, each as released:

- ``submission_annotations`` and every element of ``validation`` are JSON *strings* (objects
  are accepted too);
- ``hashed_filename`` is an unsigned 64-bit number, about half of them beyond the int64 range,
  a JSON number in rounds 1 and 4 and a string in round 3: it is read as text;
- the "unsure" image answer is ``unsure_image_safe`` in round 3 and ``image_unsure_safe`` in
  round 4 (both mean unsure);
- the free text about targets is ``community_affected_other_input`` (the dataset's README says
  ``image_failure_target_other_input``; both are read);
- a few list answers hold the word "no_response" split into its characters: no answer;
- some rows have 3 or 4 validations instead of 5.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dataperf.kinds.redteaming_files import (
    REASONS,
    Attack,
    Problems,
    RecordReader,
    Validation,
    Vocabulary,
    load_json,
    released_list,
)
from dataperf.kinds.selection_files import decode_text

COLUMNS = ("prompt", "hashed_filename", "submission_annotations", "validation")
TIME_COLUMNS = ("timestamp", "submitted_timestamp")


def looks_released(document: Any) -> bool:
    """True for a columns-oriented frame with the released submitted-examples columns."""
    return isinstance(document, dict) and all(
        isinstance(document.get(column), dict) for column in ("prompt", "submission_annotations"))


def _annotation_record(raw: Mapping[str, Any], prompt: Any, image: Any,
                       time: Any) -> dict[str, Any]:
    return {
        "id": raw.get("example_uid"),
        "prompt": prompt,
        "image_id": None if image is None else str(image),
        "submitter": raw.get("submitter_id"),
        "timestamp": time,
        "rewritten_prompt": raw.get("rewritten_prompt"),
        "attack_modes": raw.get("text_attack_mode"),
        "harm_types": raw.get("image_failure_type"),
        "targets": raw.get("image_failure_target"),
        "attack_mode_other": raw.get("text_attack_mode_other_input"),
        "harm_type_other": raw.get("image_failure_type_other_input"),
        "target_other": raw.get("community_affected_other_input",
                                raw.get("image_failure_target_other_input")),
    }


def _validation_record(raw: Mapping[str, Any], attack_id: Any) -> dict[str, Any]:
    return {
        "attack_id": attack_id,
        "annotator": raw.get("annotator_id"),
        "text_safety": raw.get("text_safety_validation"),
        "image_safety": raw.get("image_safety_validation"),
        "attack_modes": raw.get("text_attack_mode"),
        "harm_types": raw.get("image_failure_type"),
        "targets": raw.get("image_failure_target"),
        "answer_time_ms": raw.get("answer_time_ms"),
        "question_id": raw.get("question_id"),
        **{key: raw.get(f"{key}_text") for key in REASONS},
    }


def _row_keys(column: Mapping[str, Any]) -> list[str]:
    """Row keys in frame order: numerically where they are numbers, as pandas wrote them."""
    return sorted(column, key=lambda key: (0, int(key), "") if key.isdigit() else (1, 0, key))


def read_released(name: str, data: bytes, *, vocabulary: Vocabulary, problems: Problems,
                  round_name: str | None = None) -> tuple[list[Attack], list[Validation]]:
    """The attacks and validations of one released file, rows in frame order, each attack's
    validations in their listed order (``round_name`` is given to the attacks)."""
    text = decode_text(name, data, problems.problems)
    document = None if text is None else load_json(name, text, problems)
    if document is None:
        return [], []
    if not looks_released(document):
        problems.add(name, "bad-json-shape", "is not a released Adversarial Nibbler file "
                     "(a columns-oriented frame with the columns "
                     f"{', '.join(COLUMNS)}) nor a JSON Lines file of attacks")
        return [], []
    time_column = next((c for c in TIME_COLUMNS if isinstance(document.get(c), dict)), None)
    columns = {column: document.get(column) or {} for column in (*COLUMNS, time_column or "")}
    reader = RecordReader(name, vocabulary, problems)
    attacks: list[Attack] = []
    validations: list[Validation] = []
    for row, key in enumerate(_row_keys(document["prompt"]), start=1):
        where = f"row {key}"
        raw = _decoded(columns["submission_annotations"].get(key), name, where, problems)
        if raw is None:
            continue
        record = _annotation_record(raw, columns["prompt"].get(key),
                                    columns["hashed_filename"].get(key),
                                    columns[time_column or ""].get(key))
        attack = reader.attack(record, row, released_list)
        if attack is None:
            continue
        attacks.append(attack if round_name is None else replace(attack, round=round_name))
        listed = columns["validation"].get(key)
        if listed is not None and not isinstance(listed, list):
            problems.add(name, "bad-json-shape", f"{where}: 'validation' must be a list", row)
            continue
        for item in listed or []:
            found = _decoded(item, name, where, problems)
            if found is not None:
                validation = reader.validation(_validation_record(found, attack.attack_id), row,
                                               released_list)
                if validation is not None:
                    validations.append(validation)
    return attacks, validations


def _decoded(value: Any, name: str, where: str, problems: Problems) -> dict[str, Any] | None:
    """A released object, given as an object or as a JSON string of one."""
    if isinstance(value, str):
        value = load_json(name, value, problems)
        if value is None:
            return None
    if not isinstance(value, dict):
        problems.add(name, "bad-json-shape", f"{where}: expected a JSON object (or a string "
                     "holding one)")
        return None
    return value


def released_prompts_listing(text: str) -> bool:
    """True for a released prompts-only CSV (header ``,prompt``): the prompts of a JSON file
    beside it, without annotations."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    return first in (",prompt", '"",prompt', ",\"prompt\"")


_TEXT_SAFETY = {"safe": "text_safe", "unsafe": "text_unsafe", "unsure": "text_other"}
_IMAGE_SAFETY = {"safe": "image_safe", "unsafe": "image_unsafe", "unsure": "image_unsure_safe"}


def released_document(attacks: Sequence[Attack], validations: Sequence[Validation]
                      ) -> dict[str, dict[str, Any]]:
    """Attacks and their validations as a released ``submitted/*.json`` frame (the latest
    rounds' spelling: ``submitted_timestamp``, objects as JSON strings), so that a round run
    on the platform can be published like the original; :func:`read_released` reads it
    back to the same records."""
    by_attack: dict[str, list[Validation]] = defaultdict(list)
    for validation in validations:
        by_attack[validation.attack_id].append(validation)
    frame: dict[str, dict[str, Any]] = {c: {} for c in ("submitted_timestamp", *COLUMNS)}
    for row, attack in enumerate(attacks):
        key = str(row)
        frame["submitted_timestamp"][key] = attack.timestamp_ms
        frame["prompt"][key] = attack.prompt
        frame["hashed_filename"][key] = attack.image_id
        frame["submission_annotations"][key] = json.dumps({
            "example_uid": attack.attack_id, "submitter_id": attack.submitter,
            "rewritten_prompt": attack.rewritten_prompt,
            "text_attack_mode": list(attack.attack_modes),
            "text_attack_mode_other_input": attack.attack_mode_other,
            "image_failure_type": list(attack.harm_types),
            "image_failure_type_other_input": attack.harm_type_other,
            "image_failure_target": list(attack.targets),
            "community_affected_other_input": attack.target_other})
        frame["validation"][key] = [json.dumps({
            "annotator_id": v.annotator, "answer_time_ms": v.answer_time_ms,
            "question_id": v.question_id, "submitted_prompt": attack.prompt,
            "text_safety_validation": [_TEXT_SAFETY[v.text_safety]] if v.text_safety else [],
            "image_safety_validation": [_IMAGE_SAFETY[v.image_safety]]
            if v.image_safety else [],
            "text_attack_mode": list(v.attack_modes), "image_failure_type": list(v.harm_types),
            "image_failure_target": list(v.targets),
            **{f"{reason}_text": v.reasons.get(reason, "") for reason in REASONS},
        }) for v in by_attack[attack.attack_id]]
    return frame


__all__ = ["looks_released", "read_released", "released_document", "released_prompts_listing"]

