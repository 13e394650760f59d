"""What a submission's ``validations/`` folder carries besides the validations themselves:
the context a hosted scoring is made in.

- ``validations/rounds.json``: k of rounds the edition does not know, ``{"round name": k}``.
- ``validations/earlier.jsonl``: prompts that other participants submitted in the round, with
  their times, so that the taken-prompt rule holds without other participants' attacks in the
  submission. Each line is ``{"prompt": ..., "round": ..., "timestamp": ms}``. The platform
  writes only the prompts the participant submitted too, in the participant's own spelling,
  so the file tells them no more than that someone else submitted the same prompt, and when.
"""

from __future__ import annotations

import json
from typing import Any

from dataperf.kinds.redteaming_files import MAX_TEXT, Attack, Problems, jsonl_records
from dataperf.kinds.selection_files import decode_text

#: A submission's own validations: files in this folder replace the edition's.
VALIDATIONS_DIR = "validations/"
ROUNDS_FILE = VALIDATIONS_DIR + "rounds.json"
EARLIER_FILE = VALIDATIONS_DIR + "earlier.jsonl"
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


def round_validations(data: bytes | None, problems: Problems) -> dict[str, int]:
    """:data:`ROUNDS_FILE`'s k per round name (1 to 100)."""
    if data is None:
        return {}
    try:
        found = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        problems.add(ROUNDS_FILE, "bad-json", f"is not JSON: {err or 'nested too deeply'}")
        return {}
    if not isinstance(found, dict) or not all(
            isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= 100
            for k in found.values()):
        problems.add(ROUNDS_FILE, "bad-json-shape", 'must map round names to k, 1 to 100: '
                     '{"round name": 5}')
        return {}
    return dict(found)
