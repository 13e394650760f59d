"""The speech edition's audio: rendered words at 16 kHz, damaged, placed in 1-s windows and
mixed with noise, one clip at a time.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import resample_poly

from dataperf.challenges.speech_selection.build.plan import Clip, RenderKey
from dataperf.challenges.speech_selection.build.sources import (
    Voice,
)

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # 1-s clips, like MSWC
TRIM_LEVEL = 0.02


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


