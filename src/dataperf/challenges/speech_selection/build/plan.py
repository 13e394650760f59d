"""The plan of the speech edition: every clip drawn from the seed (word, voice, rate, pitch,
placement, noise, damage, label), before any sound is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataperf.challenges.speech_selection.build.sources import (
    EVAL_ONLY_SHARE,
    FESTIVAL_FIXED_RATE,
    LANGUAGES,
    NONTARGET,
    Voice,
    VoiceGroups,
    WordLists,
    _draw,
    voice_groups,
)

SPEEDS = tuple(round(0.80 + 0.05 * k, 2) for k in range(10))  # 0.80 .. 1.25
PITCHES = tuple(range(-3, 4))  # semitones
GAIN_DB = (-12.0, 0.0)
MAX_SHIFT_S = 0.2
NOISES: tuple[str, ...] = ("none", "white", "pink", "brown", "babble")
SNR_DB = (5.0, 30.0)
BABBLE_WORDS = 4
BABBLE_BANK = 40

DAMAGES: tuple[str, ...] = ("none", "cut-short", "cut-long", "neighbour", "wrong-label")
TARGET_DAMAGE: dict[str, float] = {
    "cut-short": 0.06, "cut-long": 0.05, "neighbour": 0.05, "wrong-label": 0.05,
}
NONTARGET_DAMAGE: dict[str, float] = {"cut-short": 0.05, "cut-long": 0.05, "wrong-label": 0.04}
CUT_SHORT_KEEP = (0.35, 0.65)
CUT_LONG_PART = (0.3, 0.7)
CUT_LONG_GAP_S = (0.0, 0.05)


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


RenderKey = tuple[str, str, float, str]  # (engine, voice, speed, word)


def _word_keys(clip: Clip) -> list[RenderKey]:
    keys = [(clip.voice.engine, clip.voice.name, clip.speed, clip.word)]
    if clip.neighbour is not None:
        keys.append((clip.voice.engine, clip.voice.name, clip.speed, clip.neighbour))
    keys += [(v.engine, v.name, s, w) for w, v, s, _ in clip.babble]
    return keys

