"""Speech selection: the original ``eval.py`` of ``dataperf-speech-example``, unmodified, against
``dataperf evaluate speech-selection --profile official`` on the same files.

The data are generated in the original layout at the original's dimensions (1024-d float32
MSWC-style embeddings, one parquet file per word, ``allowed_training_set.yaml`` and ``eval.yaml``)
for two languages; each word's clips scatter around their own centre, and some clips carry
another word's sound, as forced alignment does. The submissions are written as the original's
``selection/main.py`` writes them (``{lang}_{size}_train.json``, keys sorted), in both sizes,
with the IDs in an order the word files do not have and the nontargets of several words
interleaved, so a scorer that trains in any other order than the original's gets other numbers.
One more file leaves a target word out, which the original answers by numbering the classes of
the file's own words.

The original runs under ``DATAPERF_ORIGINALS_PYTHON`` (default: this interpreter), which needs
its requirements (pandas, fire, tqdm, PyYAML, scikit-learn); the test is skipped without them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import yaml

from official_layout import dataperf
from speech_layout import write_word_file

REPOSITORY = "dataperf-speech-example"
DIM = 1024
SIZES = (25, 60)
WORDS = {  # per language: 5 target words, nontarget words of the pool, of the evaluation only
    "en": (["left", "right", "stop", "learn", "yes"],
           [f"en{i:02d}" for i in range(30)], [f"en-eval{i:02d}" for i in range(15)]),
    "pt": (["sim", "não", "casa", "gato", "pão"],
           [f"pt{i:02d}" for i in range(30)], [f"pt-eval{i:02d}" for i in range(15)]),
}
SCORE = re.compile(r"^Score:\s+(\S+)\s*$", re.MULTILINE)


def write_language(folder: Path, lang: str, rng: np.random.Generator) -> dict:
    """``dataperf_{lang}_data``; returns the allowed set as written."""
    targets, known, unknown = WORDS[lang]
    centres = {w: rng.normal(size=DIM) for w in [*targets, *known, *unknown]}
    counter = iter(range(10**7))

    def clips(word: str, n: int) -> list[tuple[str, np.ndarray]]:
        out = []
        for _ in range(n):
            spoken = word if rng.random() > 0.2 else str(rng.choice(known))  # a bad cut
            vector = centres[spoken] + rng.normal(size=DIM) * 1.6
            out.append((f"{word}/common_voice_{lang}_{next(counter):08d}.opus",
                        vector.astype(np.float32)))
        return out

    allowed: dict = {"targets": {}, "nontargets": []}
    evaluation: dict = {"targets": {}, "nontargets": []}
    for word in targets:
        listed, unlisted = clips(word, 70), clips(word, 10)
        rows = [*listed, *unlisted]
        order = rng.permutation(len(rows))  # the file's order is neither the IDs' nor the list's
        write_word_file(folder / "train_embeddings" / f"{word}.parquet", [rows[k] for k in order])
        allowed["targets"][word] = [clip for clip, _ in listed]
        held_out = clips(word, 40)
        write_word_file(folder / "eval_embeddings" / f"{word}.parquet", held_out)
        evaluation["targets"][word] = [clip for clip, _ in held_out]
    for word in known:
        listed = clips(word, 12)
        write_word_file(folder / "train_embeddings" / f"{word}.parquet", listed[::-1])
        allowed["nontargets"] += [clip for clip, _ in listed]
        held_out = clips(word, 4)
        write_word_file(folder / "eval_embeddings" / f"{word}.parquet", held_out)
        evaluation["nontargets"] += [clip for clip, _ in held_out]
    for word in unknown:
        held_out = clips(word, 4)
        write_word_file(folder / "eval_embeddings" / f"{word}.parquet", held_out)
        evaluation["nontargets"] += [clip for clip, _ in held_out]
    for name, data in (("allowed_training_set.yaml", allowed), ("eval.yaml", evaluation)):
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return allowed


def random_selection(allowed: dict, size: int, rng: np.random.Generator, *,
                     leave_out: str | None = None) -> dict:
    """About the original's random baseline: the budget split evenly over the classes, IDs in
    random order (the nontargets of many words interleaved)."""
    words = [w for w in allowed["targets"] if w != leave_out]
    per_class = size // (len(allowed["targets"]) + 1)
    targets = {w: rng.permutation(allowed["targets"][w])[:per_class].tolist() for w in words}
    nontargets = rng.permutation(allowed["nontargets"])[:size - per_class * len(words)]
    return {"targets": targets, "nontargets": nontargets.tolist()}


def write_submission(path: Path, selection: dict) -> None:
    """As the original's selection/main.py writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, sort_keys=True, indent=4), encoding="utf-8")


def original_score(python: str, repository: Path, folder: Path, lang: str, size: int,
                   train_file: Path) -> str:
    """The score ``eval.py`` prints, as printed."""
    done = subprocess.run(
        [python, "eval.py", "--language", lang, "--train_size", str(size),
         "--eval_embeddings_dir", str(folder / "eval_embeddings"),
         "--train_embeddings_dir", str(folder / "train_embeddings"),
         "--allowed_training_set", str(folder / "allowed_training_set.yaml"),
         "--eval_file", str(folder / "eval.yaml"), "--train_file", str(train_file),
         "--config_file", "workspace/dataperf_speech_config.yaml"],
        cwd=repository, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    found = SCORE.findall(done.stdout)
    assert len(found) == 1, done.stdout
    return found[0]


def test_official_profile_prints_the_original_scores(original, original_python,
                                                    tmp_path: Path) -> None:
    repository = original(REPOSITORY)
    python = original_python("fire, pandas, sklearn, tqdm, yaml")
    rng = np.random.default_rng(2023)
    data = tmp_path / "data"
    allowed = {lang: write_language(data / f"dataperf_{lang}_data", lang, rng)
               for lang in WORDS}
    submissions = tmp_path / "submission"
    for lang in WORDS:
        for size in SIZES:
            write_submission(submissions / f"{lang}_{size}_train.json",
                             random_selection(allowed[lang], size, rng))
    partial = tmp_path / "partial" / "en_60_train.json"  # one task, one target word left out
    write_submission(partial, random_selection(allowed["en"], 60, rng, leave_out="learn"))

    home = tmp_path / "home"
    edition = tmp_path / "edition"
    imported = dataperf("data", "import", "speech-selection", data, "--out", edition, home=home)
    assert imported.returncode == 0, imported
    scored = dataperf("evaluate", "speech-selection", submissions, "--edition", edition,
                      "--profile", "official", "--json", home=home)
    assert scored.returncode == 0, scored
    ours = {t["task"]: t["value"] for t in json.loads(scored.stdout)["tasks"]}
    one = dataperf("evaluate", "speech-selection", partial.parent, "--edition", edition,
                   "--profile", "official", "--json", home=home)
    assert one.returncode == 0, one
    ours["en_60 (one word left out)"] = json.loads(one.stdout)["tasks"][0]["value"]

    theirs = {f"{lang}_{size}": original_score(
        python, repository, data / f"dataperf_{lang}_data", lang, size,
        submissions / f"{lang}_{size}_train.json") for lang in WORDS for size in SIZES}
    theirs["en_60 (one word left out)"] = original_score(
        python, repository, data / "dataperf_en_data", "en", 60, partial)
    print("\n".join(f"{task}: original {theirs[task]}, ours {ours[task]!r}" for task in theirs))
    assert {task: repr(value) for task, value in ours.items()} == theirs
