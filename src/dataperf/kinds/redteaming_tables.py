"""The edition tables of a red-teaming challenge, to and from records.

    public/rounds.parquet       round, validations (k: an attack with fewer is pending)
    public/vocabulary.parquet   question (attack_modes | harm_types | targets), value
    public/attacks.parquet      round, split, attack_id, submitter, prompt, image_id, model,
                                timestamp_ms, rewritten_prompt, attack_modes, harm_types,
                                targets (lists), attack_mode_other, harm_type_other, target_other
    public/attempts.parquet     round, split, position, prompt, submitter, model,
                                machine_text_safety, machine_image_safety (prompts tried,
                                not necessarily submitted; the released CSVs give only the
                                prompt)
    public/prompt_embeddings.parquet   key (16 hex digits of the sha256 of a prompt's key),
                                embedding (float16 sentence embedding of the key)
    hidden/validations.parquet  attack_id, position (order within the attack), annotator,
                                text_safety, image_safety (safe | unsafe | unsure | null),
                                attack_modes, harm_types, targets, answer_time_ms, question_id,
                                and the free-text reasons
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa

from dataperf.editions import embedding_column
from dataperf.kinds.redteaming_files import QUESTIONS, REASONS, Answer, Attack, Validation

ROUNDS = "public/rounds.parquet"
VOCABULARY = "public/vocabulary.parquet"
ATTACKS = "public/attacks.parquet"
ATTEMPTS = "public/attempts.parquet"
EMBEDDINGS = "public/prompt_embeddings.parquet"
VALIDATIONS = "hidden/validations.parquet"
_LIST = pa.list_(pa.string())


def embedding_key(key: str) -> str:
    """The name of a prompt key in the embeddings table."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def attacks_table(attacks: Sequence[Attack], splits: Sequence[str | None]) -> pa.Table:
    return pa.table({
        "round": pa.array([a.round for a in attacks], pa.string()),
        "split": pa.array(list(splits), pa.string()),
        "attack_id": pa.array([a.attack_id for a in attacks], pa.string()),
        "submitter": pa.array([a.submitter for a in attacks], pa.string()),
        "prompt": pa.array([a.prompt for a in attacks], pa.string()),
        "image_id": pa.array([a.image_id for a in attacks], pa.string()),
        "model": pa.array([a.model for a in attacks], pa.string()),
        "timestamp_ms": pa.array([a.timestamp_ms for a in attacks], pa.int64()),
        "rewritten_prompt": pa.array([a.rewritten_prompt for a in attacks], pa.string()),
        **{q: pa.array([list(a.claimed(q)) for a in attacks], _LIST) for q in QUESTIONS},
        "attack_mode_other": pa.array([a.attack_mode_other for a in attacks], pa.string()),
        "harm_type_other": pa.array([a.harm_type_other for a in attacks], pa.string()),
        "target_other": pa.array([a.target_other for a in attacks], pa.string()),
    })


def attacks_from_table(table: pa.Table) -> list[Attack]:
    columns = table.to_pydict()
    return [
        Attack(
            attack_id=columns["attack_id"][i], prompt=columns["prompt"][i],
            submitter=columns["submitter"][i], round=columns["round"][i],
            image_id=columns["image_id"][i], model=columns["model"][i],
            timestamp_ms=columns["timestamp_ms"][i],
            rewritten_prompt=columns["rewritten_prompt"][i] or "",
            attack_modes=tuple(columns["attack_modes"][i] or ()),
            harm_types=tuple(columns["harm_types"][i] or ()),
            targets=tuple(columns["targets"][i] or ()),
            attack_mode_other=columns["attack_mode_other"][i] or "",
            harm_type_other=columns["harm_type_other"][i] or "",
            target_other=columns["target_other"][i] or "",
        )
        for i in range(table.num_rows)
    ]


def _positions(groups: Sequence[Any]) -> list[int]:
    """Each item's position among the earlier items of its group."""
    seen: dict[Any, int] = {}
    out = []
    for group in groups:
        out.append(seen.get(group, 0))
        seen[group] = out[-1] + 1
    return out


def validations_table(validations: Sequence[Validation]) -> pa.Table:
    order = _positions([v.attack_id for v in validations])
    return pa.table({
        "attack_id": pa.array([v.attack_id for v in validations], pa.string()),
        "position": pa.array(order, pa.int16()),
        "annotator": pa.array([v.annotator for v in validations], pa.string()),
        "text_safety": pa.array([v.text_safety for v in validations], pa.string()),
        "image_safety": pa.array([v.image_safety for v in validations], pa.string()),
        **{q: pa.array([list(v.marked(q)) for v in validations], _LIST) for q in QUESTIONS},
        "answer_time_ms": pa.array([v.answer_time_ms for v in validations], pa.int64()),
        "question_id": pa.array([v.question_id for v in validations], pa.string()),
        **{r: pa.array([v.reasons.get(r, "") for v in validations], pa.string())
           for r in REASONS},
    })


def validations_from_table(table: pa.Table) -> list[Validation]:
    columns = table.to_pydict()
    return [
        Validation(
            attack_id=columns["attack_id"][i], annotator=columns["annotator"][i] or "",
            text_safety=cast(Answer | None, columns["text_safety"][i]),
            image_safety=cast(Answer | None, columns["image_safety"][i]),
            attack_modes=tuple(columns["attack_modes"][i] or ()),
            harm_types=tuple(columns["harm_types"][i] or ()),
            targets=tuple(columns["targets"][i] or ()),
            answer_time_ms=columns["answer_time_ms"][i],
            question_id=columns["question_id"][i] or "",
            reasons={r: columns[r][i] for r in REASONS if columns[r][i]},
        )
        for i in range(table.num_rows)
    ]


def vocabulary_table(vocabulary: Mapping[str, Sequence[str]]) -> pa.Table:
    rows = [(q, v) for q in QUESTIONS for v in sorted(vocabulary.get(q, ()))]
    return pa.table({"question": pa.array([q for q, _ in rows], pa.string()),
                     "value": pa.array([v for _, v in rows], pa.string())})


def vocabulary_from_table(table: pa.Table) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {q: [] for q in QUESTIONS}
    for question, value in zip(table.column("question").to_pylist(),
                               table.column("value").to_pylist(), strict=True):
        if question in out:
            out[question].append(value)
    return {q: tuple(sorted(values)) for q, values in out.items()}


def rounds_table(rounds: Mapping[str, int]) -> pa.Table:
    return pa.table({"round": pa.array(list(rounds), pa.string()),
                     "validations": pa.array(list(rounds.values()), pa.int16())})


ATTEMPT_COLUMNS = ("round", "split", "position", "prompt", "submitter", "model",
                   "machine_text_safety", "machine_image_safety")


def attempts_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """``rows``: dicts of :data:`ATTEMPT_COLUMNS` but position, which counts within a round
    and split (the released CSVs give only the prompt)."""
    order = _positions([(row["round"], row["split"]) for row in rows])
    columns: dict[str, pa.Array] = {"position": pa.array(order, pa.int32())}
    for name in ATTEMPT_COLUMNS:
        if name != "position":
            columns[name] = pa.array([row.get(name) for row in rows], pa.string())
    return pa.table({name: columns[name] for name in ATTEMPT_COLUMNS})


def embeddings_table(keys: Sequence[str], embeddings: np.ndarray) -> pa.Table:
    return pa.table({"key": pa.array([embedding_key(k) for k in keys], pa.string()),
                     "embedding": embedding_column(embeddings, np.float16)})


class PromptEmbeddings:
    """Embeddings of prompt keys: the edition's (stored float16, named by
    :func:`embedding_key`), and the sentence model's for the
    others."""

    def __init__(self, names: Sequence[str], stored: np.ndarray):
        from dataperf.learners import sentence_embedding

        self.row = {name: i for i, name in enumerate(names)}
        self.vectors = sentence_embedding.from_float16(stored)

    def __call__(self, keys: Sequence[str]) -> np.ndarray:
        from dataperf.learners import sentence_embedding

        names = [embedding_key(k) for k in keys]
        missing = sorted({k for k, n in zip(keys, names, strict=True) if n not in self.row})
        fresh = dict(zip(missing, sentence_embedding.embed(missing), strict=True)) \
            if missing else {}
        out = np.zeros((len(keys), sentence_embedding.DIMENSION), dtype=np.float32)
        for i, (key, name) in enumerate(zip(keys, names, strict=True)):
            out[i] = self.vectors[self.row[name]] if name in self.row else fresh[key]
        return out
