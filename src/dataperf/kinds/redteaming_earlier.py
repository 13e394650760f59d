"""Prompts that other participants submitted in a round, with their times: the file
``validations/earlier.jsonl`` of a hosted scoring, so that the taken-prompt rule holds without
other participants' attacks in the submission.

Each line is ``{"prompt": ..., "round": ..., "timestamp": ms}``. The platform writes only the
prompts the participant submitted too, in the participant's own spelling, so the file tells
them no more than that someone else submitted the same prompt, and when.
"""

from __future__ import annotations

from typing import Any

from dataperf.kinds.redteaming_files import MAX_TEXT, Attack, Problems, jsonl_records
from dataperf.kinds.selection_files import decode_text

EARLIER_FILE = "validations/earlier.jsonl"
#: The submitter of every earlier prompt: someone other than the scored participant.
ANOTHER = "(another participant)"
FIELDS = ("prompt", "round", "timestamp")


def earlier_record(prompt: str, round_name: str, timestamp_ms: int) -> dict[str, Any]:
    return {"prompt": prompt, "round": round_name, "timestamp": timestamp_ms}


def read_earlier(data: bytes, problems: Problems) -> list[Attack]:
    """The earlier prompts as attacks of :data:`ANOTHER` (context for the taken rule only)."""
    text = decode_text(EARLIER_FILE, data, problems.problems)
    if text is None:
        return []
    found = []
    for line, record in jsonl_records(EARLIER_FILE, text, problems):
        unknown = sorted(set(record) - set(FIELDS))
        prompt, round_name, when = (record.get(f) for f in FIELDS)
        if unknown:
            problems.add(EARLIER_FILE, "unknown-field", f"has unknown fields "
                         f"{', '.join(unknown)}; an earlier prompt has {', '.join(FIELDS)}",
                         line)
        elif not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_TEXT:
            problems.add(EARLIER_FILE, "bad-value", f"prompt must be text of 1 to "
                         f"{MAX_TEXT:,} characters", line)
        elif not isinstance(round_name, str) or not round_name:
            problems.add(EARLIER_FILE, "bad-value", "round must name the round", line)
        elif not isinstance(when, int) or isinstance(when, bool) or not 0 <= when < 2**53:
            problems.add(EARLIER_FILE, "bad-value", "timestamp must be milliseconds since "
                         "1970", line)
        else:
            found.append(Attack(attack_id=f"earlier-{line}", prompt=prompt, submitter=ANOTHER,
                                round=round_name, timestamp_ms=when))
    return found

