"""Import the original DataPerf v0.5 speech selection files as an ``official`` edition.

The original layout (``harvard-edge/dataperf-speech-example`` after its download script, which
unpacks one folder per language)::

    dataperf_{lang}_data/                    lang: en, id, pt (at least one)
        train_embeddings/{word}.parquet      clip_id (string), mswc_embedding_vector (list of
                                             float32, 1024 long): one file per word
        eval_embeddings/{word}.parquet       the same for the evaluation clips (optional: some
                                             downloads evaluate from train_embeddings/)
        allowed_training_set.yaml            {targets: {word: [clip_id, ...]},
        eval.yaml                             nontargets: [clip_id, ...]}

``source`` is the folder holding the language folders, or one language folder itself. As the
original loader (``selection/load_samples.py``) does, a target word's clips are read from
``{word}.parquet`` and a nontarget clip from the file of its ID's first path component
(``cat/common_voice_id_12345.wav`` -> ``cat.parquet``). Unlike the original loader, a listed ID
missing from its file is an error (the original dropped missing target IDs silently).

Each language becomes two tasks, ``{lang}_25`` and ``{lang}_60`` (the budgets), which share the
language's data:

    public/pool.parquet        id, embedding: every allowed training clip of every language, once
    public/candidates.parquet  task, id, label, file_row: per task its language's allowed
                               training clips with the word they were cut for (a target word
                               or ``nontarget``) and the clip's row in its word file of
                               ``train_embeddings/`` (the order the original evaluator trains a
                               word's clips in), sorted by (task, label, id)
    hidden/test.parquet        task, id, embedding, label: the evaluation clips of the task's
                               language with their word, sorted by (task, label, id)

Embeddings are stored as float32, the original's precision, so the numbers are exactly the
source's (a float64 source is rounded to float32). The manifest's parameters record per
language the target words, the counts, which folder the evaluation clips came from and the
sha256 of the two YAML files and of the word files read (one digest per embeddings folder: the
sha256 of the lines ``{sha256}  {file name}`` of its files read, sorted by name).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from dataperf.challenge import Progress, no_progress
from dataperf.challenges.vision_selection.official import (
    read_parquet_columns,
    source_directory,
)
from dataperf.editions import (
    Edition,
    Source,
    checked_embeddings,
    embedding_column,
    sha256_file,
    write_edition,
)
from dataperf.exceptions import SourceDataError
from dataperf.kinds.selection_files import nontarget_word

LANGUAGES = ("en", "id", "pt")
BUDGETS = (25, 60)
NONTARGET = "nontarget"
TRAIN_EMBEDDINGS = "train_embeddings"
EVAL_EMBEDDINGS = "eval_embeddings"
ALLOWED = "allowed_training_set.yaml"
EVAL = "eval.yaml"
ID_COLUMN = "clip_id"
VECTOR_COLUMN = "mswc_embedding_vector"
SOURCES = [
    Source(
        name="Multilingual Spoken Words Corpus (MSWC) embeddings",
        licence="CC-BY 4.0",
        origin="https://mlcommons.org/words: 1024-d embeddings of its clips computed by DataPerf",
    ),
    Source(
        name="DataPerf v0.5 speech selection (dataperf-speech-example)",
        licence="CC-BY 4.0 (derived from MSWC); files as distributed by DataPerf",
        origin="original challenge files of harvard-edge/dataperf-speech-example "
        "(dataperf_{lang}_data: embeddings, allowed_training_set.yaml, eval.yaml), supplied by "
        "the user",
    ),
]
_FOLDER = re.compile(r"^dataperf_(?P<lang>[a-z]+)_data$")
_SHOWN = 3  # IDs named per message
_MAX_PROBLEMS = 12  # problems listed per error


@dataclass
class _Clips:
    """One YAML file: the clip IDs per word, nontargets under ``NONTARGET``."""

    path: Path
    targets: dict[str, list[str]]
    nontargets: list[str]

    def labelled(self) -> list[tuple[str, str]]:
        """(id, label) of every clip, targets first."""
        return [(i, word) for word, ids in self.targets.items() for i in ids] + [
            (i, NONTARGET) for i in self.nontargets]


@dataclass
class _Language:
    lang: str
    train: dict[str, tuple[str, np.ndarray, int]]  # id -> (label, float32 vector, file row)
    test: list[tuple[str, str, np.ndarray, int]]  # (id, label, vector, file row)
    parameters: dict[str, Any] = field(default_factory=dict)


def import_official(source: Path, out_dir: Path, *, overwrite: bool = False,
                    progress: Progress = no_progress) -> Edition:
    """Read the original layout under ``source`` and write an edition to ``out_dir``."""
    folders = _language_folders(source_directory(source))
    languages: list[_Language] = []
    for step, (lang, folder) in enumerate(folders):
        progress(f"reading {folder.name}", step, len(folders))
        languages.append(_read_language(lang, folder))
    dims = {lang.lang: _dim(lang) for lang in languages}
    if len(set(dims.values())) > 1:
        raise SourceDataError(
            "the languages' embeddings have different lengths ("
            + ", ".join(f"dataperf_{k}_data: {d}" for k, d in dims.items())
            + "); every clip needs the same dimension")
    pool = _pool(languages)
    progress("writing edition", len(folders), len(folders) + 1)
    tasks = [f"{lang.lang}_{budget}" for lang in languages for budget in BUDGETS]
    vectors = np.stack([vector for _, vector in pool])  # each YAML lists a clip: never empty
    candidates = sorted((f"{lang.lang}_{budget}", label, clip, row)
                        for lang in languages for budget in BUDGETS
                        for clip, (label, _, row) in lang.train.items())
    test = sorted(((f"{lang.lang}_{budget}", label, clip, vector)
                   for lang in languages for budget in BUDGETS
                   for clip, label, vector, _ in lang.test), key=lambda row: row[:3])
    tables = {
        "public/pool.parquet": pa.table({
            "id": pa.array([clip for clip, _ in pool], pa.string()),
            "embedding": embedding_column(vectors, np.float32)}),
        "public/candidates.parquet": pa.table({
            "task": pa.array([row[0] for row in candidates], pa.string()),
            "id": pa.array([row[2] for row in candidates], pa.string()),
            "label": pa.array([row[1] for row in candidates], pa.string()),
            "file_row": pa.array([row[3] for row in candidates], pa.int32())}),
        "hidden/test.parquet": pa.table({
            "task": pa.array([row[0] for row in test], pa.string()),
            "id": pa.array([row[2] for row in test], pa.string()),
            "embedding": embedding_column(np.stack([row[3] for row in test]), np.float32),
            "label": pa.array([row[1] for row in test], pa.string())}),
    }
    edition = write_edition(
        out_dir, challenge="speech-selection", edition="official",
        builder="dataperf.challenges.speech_selection.official", builder_version="2",
        tasks=tasks, sources=SOURCES, tables=tables,
        parameters={"dim": int(vectors.shape[1]), "pool_rows": len(pool),
                    "budgets": {f"{lang.lang}_{b}": b for lang in languages for b in BUDGETS},
                    "languages": {lang.lang: lang.parameters for lang in languages}},
        overwrite=overwrite)
    progress("done", len(folders) + 1, len(folders) + 1)
    return edition


# --------------------------------------------------------------------------------------------
# Finding the language folders


def _language_folders(source: Path) -> list[tuple[str, Path]]:
    """(lang, folder) of each language, in the order of LANGUAGES."""
    expected = ("expected dataperf_en_data/, dataperf_id_data/ or dataperf_pt_data/, each with "
                f"{TRAIN_EMBEDDINGS}/, {ALLOWED} and {EVAL}")
    match = _FOLDER.match(source.name)
    if match:
        lang = match["lang"]
        if lang not in LANGUAGES:
            raise SourceDataError(f"{source}: language {lang!r} is not one of the challenge's "
                                  f"({', '.join(LANGUAGES)})")
        return [(lang, source)]
    found = [(lang, source / f"dataperf_{lang}_data") for lang in LANGUAGES
             if (source / f"dataperf_{lang}_data").is_dir()]
    if not found:
        if (source / ALLOWED).is_file():
            raise SourceDataError(
                f"{source} looks like one language's folder but is not named "
                "dataperf_{lang}_data (lang en, id or pt): rename it so its language is known")
        raise SourceDataError(f"no language folder under {source}: {expected}")
    return found


# --------------------------------------------------------------------------------------------
# Reading one language


def _read_language(lang: str, folder: Path) -> _Language:
    train_dir = folder / TRAIN_EMBEDDINGS
    eval_dir = folder / EVAL_EMBEDDINGS if (folder / EVAL_EMBEDDINGS).is_dir() else train_dir
    problems = [f"{path} is missing" for path in (folder / ALLOWED, folder / EVAL)
                if not path.is_file()]
    if not train_dir.is_dir():
        problems.append(f"{train_dir}/ is missing (the {{word}}.parquet files of the clips)")
    _raise(problems, folder)
    allowed = _read_clips(folder / ALLOWED)
    evaluation = _read_clips(folder / EVAL)
    if set(allowed.targets) != set(evaluation.targets):
        raise SourceDataError(
            f"{allowed.path.name} and {evaluation.path.name} of {folder} name different target "
            f"words: {', '.join(sorted(allowed.targets)) or 'none'} vs "
            f"{', '.join(sorted(evaluation.targets)) or 'none'}; both need the same ones")
    train_digests: dict[str, str] = {}
    eval_digests: dict[str, str] = {}
    train = _vectors(allowed, train_dir, train_digests)
    test = _vectors(evaluation, eval_dir, eval_digests)
    train_dim, eval_dim = len(train[0][2]), len(test[0][2])
    if train_dim != eval_dim:
        raise SourceDataError(
            f"{eval_dir}: the evaluation clips' embeddings have {eval_dim} values, the training "
            f"clips' ({train_dir}) {train_dim}; every clip needs the same dimension")
    parameters: dict[str, Any] = {
        "targets": sorted(allowed.targets),
        "allowed_clips": len(train),
        "allowed_nontarget_words": len({nontarget_word(i) for i in allowed.nontargets}),
        "eval_clips": len(test),
        "eval_nontarget_words": len({nontarget_word(i) for i in evaluation.nontargets}),
        "eval_embeddings": eval_dir.name,
        "sha256": {
            ALLOWED: sha256_file(allowed.path),
            EVAL: sha256_file(evaluation.path),
            TRAIN_EMBEDDINGS: _digest(train_digests),
            **({EVAL_EMBEDDINGS: _digest(eval_digests)} if eval_dir != train_dir else {}),
        },
    }
    return _Language(
        lang=lang,
        train={clip: (label, vector, row) for clip, label, vector, row in train},
        test=test, parameters=parameters)


def _raise(problems: list[str], where: Path) -> None:
    if len(problems) == 1:
        raise SourceDataError(problems[0])
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise SourceDataError(
            f"{len(problems)} problems with the original files under {where}:\n"
            + "\n".join(f"- {p}" for p in shown)
            + (f"\n- ... and {more} more" if more else ""))


def _ids(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN])
    return shown + (", ..." if len(ids) > _SHOWN else "")


def _word_problem(word: str) -> str | None:
    """Why ``word`` cannot name a file ``{word}.parquet`` inside a folder, or None."""
    if not word or word in (".", "..") or any(c in word for c in "/\\\0"):
        return f"{word!r} cannot name a word file {word}.parquet inside the embeddings folder"
    return None


def _read_clips(path: Path) -> _Clips:
    """A YAML file shaped ``{targets: {word: [id, ...]}, nontargets: [id, ...]}``, checked."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=loader)
    except (OSError, UnicodeDecodeError) as err:
        raise SourceDataError(f"cannot read {path}: {err}") from None
    except yaml.YAMLError as err:
        raise SourceDataError(f"{path} is not valid YAML: {err}") from None
    shape = "{targets: {word: [clip_id, ...]}, nontargets: [clip_id, ...]}"
    if not isinstance(data, dict) or not {"targets", "nontargets"} <= set(data):
        raise SourceDataError(f"{path} must be a mapping shaped {shape}")
    problems: list[str] = []
    targets: dict[str, list[str]] = {}
    if not isinstance(data["targets"], dict):
        problems.append(f"{path}: targets must be a mapping of target words to lists of "
                        f"clip IDs, not {_what(data['targets'])}")
    elif not data["targets"]:
        problems.append(f"{path}: targets names no target word")
    else:
        for word, ids in data["targets"].items():
            if not isinstance(word, str):
                problems.append(f"{path}: target word {word!r} is not a string")
                continue
            problem = _word_problem(word) or (
                f"{word!r} is reserved for the nontarget class" if word == NONTARGET else None)
            if problem:
                problems.append(f"{path}: target word {problem}")
            targets[word] = _id_list(path, f"targets.{word}", ids, problems)
    nontargets = _id_list(path, "nontargets", data["nontargets"], problems)
    _raise(problems, path)
    clips = _Clips(path, targets, nontargets)
    _check_unique(clips, problems)
    bad = sorted({w for i in nontargets if (w := nontarget_word(i)) and _word_problem(w)}
                 | {"" for i in nontargets if not nontarget_word(i)})
    for word in bad:
        examples = [i for i in nontargets if nontarget_word(i) == word]
        problems.append(
            f"{path}: nontarget ID(s) {_ids(examples)} name the word file {word!r}.parquet "
            "(their first path component), which is not a file name inside the embeddings "
            "folder")
    if not clips.labelled():
        problems.append(f"{path} lists no clips")
    _raise(problems, path)
    return clips


def _what(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _id_list(path: Path, key: str, ids: object, problems: list[str]) -> list[str]:
    if not isinstance(ids, list):
        problems.append(f"{path}: {key} must be a list of clip IDs, not {_what(ids)}")
        return []
    wrong = [i for i in ids if not isinstance(i, str) or not i]
    if wrong:
        problems.append(f"{path}: {key} has {len(wrong)} clip ID(s) that are not non-empty "
                        f"strings: {_ids(wrong)}")
        return []
    return ids


def _check_unique(clips: _Clips, problems: list[str]) -> None:
    """Each clip once per file: not twice in a list, not under two words or both kinds."""
    places: dict[str, list[str]] = defaultdict(list)
    for clip, label in clips.labelled():
        places[clip].append(label)
    both = [c for c, labels in places.items()
            if NONTARGET in labels and any(label != NONTARGET for label in labels)]
    if both:
        problems.append(f"{clips.path}: {len(both)} clip(s) are listed both as a target and as "
                        f"a nontarget: {_ids(both)}")
    twice = [c for c, labels in places.items() if len(labels) > 1 and c not in both]
    if twice:
        problems.append(f"{clips.path}: {len(twice)} clip ID(s) are listed more than once: "
                        f"{_ids(twice)}")


def _vectors(clips: _Clips, directory: Path,
             digests: dict[str, str]) -> list[tuple[str, str, np.ndarray, int]]:
    """(id, label, float32 vector, row in its word file) of every clip of ``clips``, in the
    YAML file's order, read from the word files in ``directory``; ``digests`` gets each file's
    sha256."""
    wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)  # word file -> (id, label)
    for word, ids in clips.targets.items():
        if ids:  # a word without clips needs no file
            wanted[word].extend((i, word) for i in ids)
    for clip in clips.nontargets:
        wanted[nontarget_word(clip)].append((clip, NONTARGET))
    problems: list[str] = []
    found: dict[str, tuple[np.ndarray, int]] = {}
    dims: dict[int, Path] = {}
    for word, rows in sorted(wanted.items()):
        path = directory / f"{word}.parquet"
        if not path.is_file():
            problems.append(f"{path} is missing (the word file of {len(rows)} clip(s) of "
                            f"{clips.path.name}, e.g. {_ids([i for i, _ in rows])})")
            continue
        digests[path.name] = sha256_file(path)
        try:
            vectors = _read_word_file(path, [i for i, _ in rows])
        except SourceDataError as err:
            problems.append(str(err))
            continue
        missing = [i for i, _ in rows if i not in vectors]
        if missing:
            problems.append(f"{path} has no row for {len(missing)} clip ID(s) listed in "
                            f"{clips.path.name}: {_ids(missing)}")
            continue
        for clip, (vector, row) in vectors.items():
            found[clip] = vector, row
            dims.setdefault(len(vector), path)
    if len(dims) > 1:
        problems.append(f"{directory}: embeddings have different lengths ("
                        + ", ".join(f"{d} in {p.name}" for d, p in sorted(dims.items()))
                        + "); every clip needs the same dimension")
    _raise(problems, directory)
    return [(clip, label, *found[clip]) for clip, label in clips.labelled()]


def _read_word_file(path: Path, ids: list[str]) -> dict[str, tuple[np.ndarray, int]]:
    """The float32 vector and the (first) row of those of ``ids`` that ``path`` holds."""
    table = read_parquet_columns(path, (ID_COLUMN, VECTOR_COLUMN))
    try:
        file_ids = table.column(ID_COLUMN).to_pylist()
    except pa.ArrowException as err:  # pragma: no cover - a corrupt page
        raise SourceDataError(f"cannot read {path}: {err}") from None
    rows: dict[str, list[int]] = defaultdict(list)
    for row, clip in enumerate(file_ids):
        rows[str(clip) if clip is not None else ""].append(row)
    wanted = [i for i in dict.fromkeys(ids) if i in rows]
    take = [r for i in wanted for r in rows[i]]
    vectors = checked_embeddings(table.column(VECTOR_COLUMN).take(pa.array(take, pa.int64())),
                                 f"{path}: {VECTOR_COLUMN}").astype(np.float32)
    result: dict[str, tuple[np.ndarray, int]] = {}
    conflicting: list[str] = []
    at = 0
    for clip in wanted:
        count = len(rows[clip])
        first = vectors[at]
        if any(not np.array_equal(first, vectors[at + k]) for k in range(1, count)):
            conflicting.append(clip)
        result[clip] = first, rows[clip][0]
        at += count
    if conflicting:
        raise SourceDataError(f"{path} has several rows with different vectors for "
                              f"{len(conflicting)} clip ID(s): {_ids(conflicting)}")
    return result


def _digest(digests: dict[str, str]) -> str:
    lines = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    return hashlib.sha256(lines.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Combining the languages


def _dim(language: _Language) -> int:
    return len(language.test[0][2])


def _pool(languages: list[_Language]) -> list[tuple[str, np.ndarray]]:
    """(id, vector) of every allowed training clip, sorted by ID; a clip shared by languages
    once, if its vectors agree."""
    seen: dict[str, tuple[str, np.ndarray]] = {}
    clashes: list[str] = []
    for language in languages:
        for clip, (_, vector, _) in language.train.items():
            if clip in seen:
                if not np.array_equal(seen[clip][1], vector):
                    clashes.append(f"{clip!r} (dataperf_{seen[clip][0]}_data and "
                                   f"dataperf_{language.lang}_data)")
                continue
            seen[clip] = (language.lang, vector)
    if clashes:
        raise SourceDataError(
            f"{len(clashes)} allowed training clip ID(s) appear in two languages with different "
            f"vectors: {', '.join(clashes[:_SHOWN])}{', ...' if len(clashes) > _SHOWN else ''}; "
            "clip IDs must identify one clip")
    return [(clip, seen[clip][1]) for clip in sorted(seen)]
