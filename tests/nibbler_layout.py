"""Files in exactly the layout of the released Adversarial Nibbler data, with its quirks.

``round*/submitted/*.json`` are pandas "columns"-oriented frames whose
``submission_annotations`` and ``validation`` elements are JSON strings; ``hashed_filename`` is
an unsigned 64-bit number (a JSON number in rounds 1 and 4, a string in round 3); the time
column is ``timestamp`` in round 1 and ``submitted_timestamp`` later; the "unsure" image answer
is spelled per round. ``round*/attempted/*.csv`` hold an index column and ``prompt``.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dataperf.kinds.redteaming_files import Attack, Validation

UNSURE_IMAGE = {"round3": "unsure_image_safe"}  # every other round: image_unsure_safe
TEXT = {"safe": "text_safe", "unsafe": "text_unsafe", "unsure": "text_other"}


def validation_object(v: Validation, prompt: str, round_name: str) -> dict[str, Any]:
    image = {"safe": "image_safe", "unsafe": "image_unsafe",
             "unsure": UNSURE_IMAGE.get(round_name, "image_unsure_safe")}
    return {
        "annotator_id": v.annotator, "answer_time_ms": v.answer_time_ms,
        "question_id": v.question_id, "submitted_prompt": prompt,
        "image_failure_target": list(v.targets), "image_failure_type": list(v.harm_types),
        "image_safety_validation": [image[v.image_safety]] if v.image_safety else [],
        "text_attack_mode": list(v.attack_modes),
        "text_safety_validation": [TEXT[v.text_safety]] if v.text_safety else [],
        **{f"{key}_text": v.reasons.get(key, "") for key in (
            "final_comments", "image_failure_other_reason", "image_safe_other_reason",
            "image_target_other_reason", "text_attack_other_reason", "text_other_reason",
            "unsure_image_reason")},
    }


def annotation_object(a: Attack) -> dict[str, Any]:
    return {"submitter_id": int(a.submitter) if (a.submitter or "").isdigit() else a.submitter,
            "example_uid": int(a.attack_id) if a.attack_id.isdigit() else a.attack_id,
            "rewritten_prompt": a.rewritten_prompt, "text_attack_mode": list(a.attack_modes),
            "text_attack_mode_other_input": a.attack_mode_other,
            "image_failure_target": list(a.targets),
            "community_affected_other_input": a.target_other,
            "image_failure_type": list(a.harm_types),
            "image_failure_type_other_input": a.harm_type_other}


def released_frame(attacks: Sequence[Attack], validations: Sequence[Validation],
                   round_name: str, *, first_key: int = 0) -> dict[str, dict[str, Any]]:
    """A columns-oriented frame of ``attacks`` as the release writes ``round_name``."""
    by_attack: dict[str, list[Validation]] = defaultdict(list)
    for v in validations:
        by_attack[v.attack_id].append(v)
    time = "timestamp" if round_name == "round1" else "submitted_timestamp"
    frame: dict[str, dict[str, Any]] = {c: {} for c in (
        time, "prompt", "hashed_filename", "submission_annotations", "validation")}
    for i, a in enumerate(attacks):
        key = str(first_key + 3 * i)  # the release keeps pandas' sparse row index
        frame[time][key] = a.timestamp_ms
        frame["prompt"][key] = a.prompt
        image = int(a.image_id) if a.image_id and a.image_id.isdigit() else a.image_id
        frame["hashed_filename"][key] = str(image) if round_name == "round3" else image
        frame["submission_annotations"][key] = json.dumps(annotation_object(a))
        frame["validation"][key] = [json.dumps(validation_object(v, a.prompt, round_name))
                                    for v in by_attack[a.attack_id]]
    return frame


def write_released(path: Path, attacks: Sequence[Attack], validations: Sequence[Validation],
                   round_name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(released_frame(attacks, validations, round_name)),
                    encoding="utf-8")
    return path


def write_attempted(path: Path, prompts: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "prompt"])
        writer.writerows([i, p] for i, p in enumerate(prompts))
    return path


def write_release(root: Path, attacks: Sequence[Attack], validations: Sequence[Validation],
                  splits: Sequence[str], attempts: Sequence[dict[str, Any]] = ()) -> Path:
    """Every round and split of ``attacks`` in the released layout under ``root``."""
    groups: dict[tuple[str, str], list[Attack]] = defaultdict(list)
    for a, split in zip(attacks, splits, strict=True):
        groups[(a.round or "round1", split)].append(a)
    for (round_name, split), members in groups.items():
        name = f"{round_name}_submitted_all.json" if split == "all" else f"{split}.json"
        write_released(root / round_name / "submitted" / name, members, validations,
                       round_name)
    tried: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in attempts:
        tried[(row["round"], row["split"])].append(row["prompt"])
    for (round_name, split), prompts in tried.items():
        write_attempted(root / round_name / "attempted" / f"{split}.csv", prompts)
    return root
