"""Importing the original DataPerf v0.5 speech selection files.

The source files are tiny (2 languages, 5 target words and 6 nontarget words each, 8-d vectors)
but in exactly the original layout of ``harvard-edge/dataperf-speech-example``'s downloads:
``dataperf_{lang}_data/{train_embeddings,eval_embeddings}/{word}.parquet`` with columns
``clip_id`` and ``mswc_embedding_vector`` (list of float32), and ``allowed_training_set.yaml``
and ``eval.yaml`` shaped ``{targets: {word: [clip_id]}, nontargets: [clip_id]}``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from build_harness import official_fixtures
from dataperf.challenges.speech_selection.official import import_official
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import EditionError, SourceDataError
from speech_layout import write_word_file

DIM = 8
WORDS = {  # per language: target words, nontarget words of the pool, nontarget words of eval only
    "en": (["left", "right", "stop", "go", "yes"], ["cat", "dog", "house", "tree", "water"],
           ["river"]),
    "pt": (["sim", "não", "casa", "gato", "pão"], ["mesa", "rio", "verde", "azul", "porta"],
           ["lua"]),
}
TASKS = ("en_25", "en_60", "pt_25", "pt_60")
ALLOWED, EVAL = "allowed_training_set.yaml", "eval.yaml"


# The original layout ---------------------------------------------------------------------------


@dataclass
class Language:
    folder: Path
    allowed: dict  # the YAML as written: {"targets": {word: [ids]}, "nontargets": [ids]}
    eval: dict
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # every clip written: id -> f32

    def labelled(self, which: str) -> list[tuple[str, str]]:
        """(id, label) of the clips of ``allowed`` or ``eval``."""
        clips = getattr(self, which)
        return [(i, w) for w, ids in clips["targets"].items() for i in ids] + [
            (i, "nontarget") for i in clips["nontargets"]]


@dataclass
class Original:
    root: Path
    languages: dict[str, Language]


def write_yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def write_language(folder: Path, lang: str, rng: np.random.Generator, *,
                   targets: list[str], known: list[str], unknown: list[str], dim: int = DIM,
                   eval_in_train: bool = False) -> Language:
    """One ``dataperf_{lang}_data`` folder. Each word's clips cluster around its own centre;
    every train word file also holds clips the allowed set does not list."""
    counter = iter(range(10**6))
    centres = {w: rng.normal(size=dim) * 3 for w in [*targets, *known, *unknown]}

    def clips(word: str, n: int) -> list[tuple[str, np.ndarray]]:
        return [(f"{word}/common_voice_{lang}_{next(counter):08d}.opus",
                 (centres[word] + rng.normal(size=dim)).astype(np.float32)) for _ in range(n)]

    train_files: dict[str, list[tuple[str, np.ndarray]]] = {}
    eval_files: dict[str, list[tuple[str, np.ndarray]]] = {}
    allowed: dict = {"targets": {}, "nontargets": []}
    evaluation: dict = {"targets": {}, "nontargets": []}
    for word in targets:
        listed, extra, held_out = clips(word, 4), clips(word, 1), clips(word, 2)
        train_files[word] = [*extra, *listed]
        eval_files[word] = held_out
        allowed["targets"][word] = [i for i, _ in listed]
        evaluation["targets"][word] = [i for i, _ in held_out]
    for word in known:
        listed, extra, held_out = clips(word, 2), clips(word, 1), clips(word, 1)
        train_files[word] = [*listed, *extra]
        eval_files[word] = held_out
        allowed["nontargets"] += [i for i, _ in listed]
        evaluation["nontargets"] += [i for i, _ in held_out]
    for word in unknown:
        held_out = clips(word, 2)
        eval_files[word] = held_out
        evaluation["nontargets"] += [i for i, _ in held_out]
    order = rng.permutation(len(allowed["nontargets"]))
    allowed["nontargets"] = [allowed["nontargets"][k] for k in order]
    if eval_in_train:
        for word, rows in eval_files.items():
            train_files[word] = train_files.get(word, []) + rows
        eval_files = {}
    for word, rows in train_files.items():
        write_word_file(folder / "train_embeddings" / f"{word}.parquet", rows)
    for word, rows in eval_files.items():
        write_word_file(folder / "eval_embeddings" / f"{word}.parquet", rows)
    write_yaml(folder / ALLOWED, allowed)
    write_yaml(folder / EVAL, evaluation)
    vectors = {i: v for rows in [*train_files.values(), *eval_files.values()] for i, v in rows}
    return Language(folder, allowed, evaluation, vectors)


def write_original(root: Path, *, languages: tuple[str, ...] = ("en", "pt"),
                   eval_in_train: bool = False) -> Original:
    rng = np.random.default_rng(5)
    written = {}
    for lang in languages:
        targets, known, unknown = WORDS[lang]
        written[lang] = write_language(root / f"dataperf_{lang}_data", lang, rng, targets=targets,
                                       known=known, unknown=unknown, eval_in_train=eval_in_train)
    return Original(root, written)


original, edition = official_fixtures(write_original, import_official)


def expected_candidates(original: Original) -> list[tuple[str, str, str]]:
    return sorted((f"{lang}_{budget}", label, clip)
                  for lang, language in original.languages.items() for budget in (25, 60)
                  for clip, label in language.labelled("allowed"))


def rows(edition: Edition, name: str, *columns: str) -> list[tuple]:
    table = edition.read_table(name)
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


# Round trip ------------------------------------------------------------------------------------


def test_manifest(original: Original, edition: Edition) -> None:
    edition = Edition.open(edition.path)
    assert (edition.challenge, edition.name) == ("speech-selection", "official")
    assert edition.tasks == TASKS
    assert sorted(edition.manifest.files) == [
        "hidden/test.parquet", "public/candidates.parquet", "public/pool.parquet"]
    sources = edition.manifest.sources
    assert "Multilingual Spoken Words Corpus" in sources[0].name
    assert sources[0].licence == "CC-BY 4.0"
    assert "dataperf-speech-example" in sources[1].origin
    parameters = edition.manifest.parameters
    assert parameters["dim"] == DIM
    assert parameters["pool_rows"] == 2 * (5 * 4 + 5 * 2)
    assert parameters["budgets"] == {"en_25": 25, "en_60": 60, "pt_25": 25, "pt_60": 60}
    en = parameters["languages"]["en"]
    assert en["targets"] == sorted(WORDS["en"][0])
    assert (en["allowed_clips"], en["allowed_nontarget_words"]) == (30, 5)
    assert (en["eval_clips"], en["eval_nontarget_words"]) == (5 * 2 + 5 + 2, 6)
    assert en["eval_embeddings"] == "eval_embeddings"
    folder = original.languages["en"].folder
    for name in (ALLOWED, EVAL):
        assert en["sha256"][name] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    listing = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
        for p in sorted((folder / "train_embeddings").glob("*.parquet"), key=lambda p: p.name))
    assert en["sha256"]["train_embeddings"] == hashlib.sha256(listing.encode()).hexdigest()
    assert set(en["sha256"]) == {ALLOWED, EVAL, "train_embeddings", "eval_embeddings"}


def test_schemas(edition: Edition) -> None:
    embedding = pa.list_(pa.float32(), DIM)
    assert edition.read_table("public/pool.parquet").schema.equals(pa.schema([
        ("id", pa.string()), ("embedding", embedding)]))
    assert edition.read_table("public/candidates.parquet").schema.equals(pa.schema([
        ("task", pa.string()), ("id", pa.string()), ("label", pa.string()),
        ("file_row", pa.int32())]))
    assert edition.read_table("hidden/test.parquet").schema.equals(pa.schema([
        ("task", pa.string()), ("id", pa.string()), ("embedding", embedding),
        ("label", pa.string())]))


def test_pool_is_every_allowed_clip_once_with_its_float32_vector(
        original: Original, edition: Edition) -> None:
    pool = edition.read_table("public/pool.parquet")
    ids = pool["id"].to_pylist()
    allowed = {clip: language.vectors[clip] for language in original.languages.values()
               for clip, _ in language.labelled("allowed")}
    assert ids == sorted(allowed)  # each once, sorted
    embeddings = embedding_array(pool["embedding"])
    assert embeddings.dtype == np.float32
    assert np.array_equal(embeddings, np.stack([allowed[i] for i in ids]))
    # The clips the allowed set does not list stay out, though they are in the word files.
    written = {i for language in original.languages.values() for i in language.vectors}
    assert len(written - set(ids)) > 0


def test_candidates_are_the_allowed_sets_with_their_words(
        original: Original, edition: Edition) -> None:
    candidates = rows(edition, "public/candidates.parquet", "task", "label", "id")
    assert candidates == expected_candidates(original)  # exactly, in (task, label, id) order
    en_25 = [(label, clip) for task, label, clip in candidates if task == "en_25"]
    assert {label for label, _ in en_25} == {*WORDS["en"][0], "nontarget"}
    assert sum(label == "nontarget" for label, _ in en_25) == 10
    assert en_25 == [(label, clip) for task, label, clip in candidates if task == "en_60"]


def test_test_rows_are_the_eval_clips_with_their_words_and_vectors(
        original: Original, edition: Edition) -> None:
    test = edition.read_table("hidden/test.parquet")
    found = list(zip(test["task"].to_pylist(), test["label"].to_pylist(), test["id"].to_pylist(),
                     strict=True))
    expected = sorted((f"{lang}_{budget}", label, clip)
                      for lang, language in original.languages.items() for budget in (25, 60)
                      for clip, label in language.labelled("eval"))
    assert found == expected
    embeddings = embedding_array(test["embedding"])
    assert embeddings.dtype == np.float32
    vectors = {i: v for language in original.languages.values()
               for i, v in language.vectors.items()}
    assert np.array_equal(embeddings, np.stack([vectors[clip] for _, _, clip in found]))
    # Unknown nontarget words appear in eval only; both budgets share the rows.
    assert any(clip.startswith("river/") for _, _, clip in found)
    pool = set(edition.read_table("public/pool.parquet")["id"].to_pylist())
    assert pool.isdisjoint(clip for _, _, clip in found)
    for lang in ("en", "pt"):
        assert ([r[1:] for r in found if r[0] == f"{lang}_25"]
                == [r[1:] for r in found if r[0] == f"{lang}_60"])


def test_one_language_folder_as_source(original: Original, tmp_path: Path) -> None:
    imported = import_official(original.languages["pt"].folder, tmp_path / "official")
    assert imported.tasks == ("pt_25", "pt_60")
    assert list(imported.manifest.parameters["languages"]) == ["pt"]
    assert rows(imported, "public/candidates.parquet", "task", "label", "id") == [
        r for r in expected_candidates(original) if r[0].startswith("pt_")]
    assert "não" in {label for (label,) in rows(imported, "hidden/test.parquet", "label")}


def test_languages_come_in_the_order_en_id_pt(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for lang in ("pt", "id"):
        write_language(tmp_path / "data" / f"dataperf_{lang}_data", lang, rng,
                       targets=["a", "b"], known=["c"], unknown=[])
    (tmp_path / "data" / "dataperf_fr_data").mkdir()  # not a language of the challenge
    imported = import_official(tmp_path / "data", tmp_path / "official")
    assert imported.tasks == ("id_25", "id_60", "pt_25", "pt_60")


def test_eval_clips_from_train_embeddings_when_there_is_no_eval_folder(tmp_path: Path) -> None:
    original = write_original(tmp_path / "data", eval_in_train=True)
    assert not (original.languages["en"].folder / "eval_embeddings").exists()
    imported = import_official(original.root, tmp_path / "official")
    test = imported.read_table("hidden/test.parquet")
    vectors = original.languages["en"].vectors
    en = [(i, v) for t, i, v in zip(test["task"].to_pylist(), test["id"].to_pylist(),
                                    embedding_array(test["embedding"]), strict=True)
          if t == "en_25"]
    assert len(en) == 5 * 2 + 5 + 2
    assert all(np.array_equal(v, vectors[i]) for i, v in en)
    parameters = imported.manifest.parameters["languages"]["en"]
    assert parameters["eval_embeddings"] == "train_embeddings"
    assert "eval_embeddings" not in parameters["sha256"]
    assert rows(imported, "public/candidates.parquet", "task", "label", "id") == \
        expected_candidates(original)


def test_a_clip_id_shared_by_two_languages_with_one_vector_is_one_pool_row(
        original: Original, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(original.root, tmp_path / "copy"))
    en, pt = original.languages["en"], original.languages["pt"]
    shared = en.allowed["nontargets"][0]  # e.g. cat/...: pt gets the same clip of that word
    pt_allowed = {**pt.allowed, "nontargets": [*pt.allowed["nontargets"], shared]}
    write_yaml(copy / "dataperf_pt_data" / ALLOWED, pt_allowed)
    word = shared.split("/")[0]
    write_word_file(copy / "dataperf_pt_data" / "train_embeddings" / f"{word}.parquet",
                  [(shared, en.vectors[shared])])
    imported = import_official(copy, tmp_path / "official")
    pool = imported.read_table("public/pool.parquet")["id"].to_pylist()
    assert pool.count(shared) == 1
    assert len(pool) == 60
    candidates = rows(imported, "public/candidates.parquet", "task", "label", "id")
    assert ("pt_60", "nontarget", shared) in candidates
    assert ("en_25", "nontarget", shared) in candidates


def test_existing_output_needs_overwrite(original: Original, edition: Edition) -> None:
    with pytest.raises(EditionError, match="already exists"):
        import_official(original.root, edition.path)
    again = import_official(original.root, edition.path, overwrite=True)
    assert again.content_hash == edition.content_hash


def test_progress_is_reported(original: Original, tmp_path: Path) -> None:
    calls: list[tuple] = []
    import_official(original.root, tmp_path / "official", progress=lambda *a: calls.append(a))
    assert calls[0] == ("reading dataperf_en_data", 0, 2)
    assert calls[-1] == ("done", 3, 3)


def test_cli_import(original: Original, edition: Edition, tmp_path: Path) -> None:
    from dataperf import registry

    if "speech-selection" not in registry.challenges():
        pytest.skip("the speech-selection entry point is not installed")
    from official_layout import dataperf

    home = tmp_path / "home"
    result = dataperf("data", "import", "speech-selection", original.root,
                      "--out", tmp_path / "official", home=home)
    assert result.returncode == 0, result
    assert "imported speech-selection edition official" in result.out
    assert "with tasks en_25, en_60, pt_25, pt_60" in result.out
    assert Edition.open(tmp_path / "official").content_hash == edition.content_hash
    assert not home.exists()


# PyYAML's dumper writes U+0085 (NEL) raw into quoted scalars, where its loader reads a space.
_WORD = st.text(st.characters(codec="utf-8", exclude_characters="/\\\0\x85"),
                min_size=1, max_size=6).filter(lambda w: w not in (".", "..", "nontarget"))
_SUFFIX = st.text(st.characters(codec="utf-8", exclude_characters="\0\x85"),
                  min_size=1, max_size=10)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(_WORD, min_size=2, max_size=6, unique_by=str.lower), data=st.data())
def test_random_words_and_ids_round_trip(words: list[str], data: st.DataObject) -> None:
    """Any words (unicode, spaces, dots) and IDs make the same candidates and vectors."""
    n_targets = data.draw(st.integers(1, len(words) - 1))
    targets, others = words[:n_targets], words[n_targets:]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    expected: list[tuple[str, str]] = []
    files: dict[str, list[tuple[str, np.ndarray]]] = {}
    allowed: dict = {"targets": {}, "nontargets": []}
    seen: set[str] = set()
    for word in [*targets, *others]:
        suffixes = data.draw(st.lists(_SUFFIX, min_size=1, max_size=3))
        for suffix in suffixes:
            # Target IDs can be anything; a nontarget ID starts with its word.
            clip = suffix if word in targets else f"{word}/{suffix.lstrip('/')}"
            if clip in seen or (word not in targets and not suffix.lstrip("/")):
                continue
            seen.add(clip)
            vector = rng.normal(size=3).astype(np.float32)
            files.setdefault(word, []).append((clip, vector))
            label = word if word in targets else "nontarget"
            if label == "nontarget":
                allowed["nontargets"].append(clip)
            else:
                allowed["targets"].setdefault(word, []).append(clip)
            expected.append((label, clip))
    for word in targets:
        allowed["targets"].setdefault(word, [])
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory) / "dataperf_id_data"
        for word, clips in files.items():
            write_word_file(folder / "train_embeddings" / f"{word}.parquet", clips)
        write_yaml(folder / ALLOWED, allowed)
        write_yaml(folder / EVAL, allowed)  # evaluating on the same clips is fine here
        imported = import_official(folder, Path(directory) / "official")
        candidates = rows(imported, "public/candidates.parquet", "task", "label", "id")
        assert candidates == sorted((t, label, c) for t in ("id_25", "id_60")
                                    for label, c in expected)
        vectors = {c: v for clips in files.values() for c, v in clips}
        pool = imported.read_table("public/pool.parquet")
        assert pool["id"].to_pylist() == sorted(vectors)
        assert np.array_equal(embedding_array(pool["embedding"]),
                              np.stack([vectors[c] for c in sorted(vectors)]))


# Errors ----------------------------------------------------------------------------------------


@pytest.fixture
def copy(original: Original, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original.root, tmp_path / "copy"))


def _fails(source: Path, message: str) -> str:
    out = source.parent / "out"
    with pytest.raises(SourceDataError, match=message) as caught:
        import_official(source, out)
    assert not out.exists()
    return str(caught.value)


def _edit_yaml(path: Path, change: Callable[[dict], object]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    write_yaml(path, data)


def _rewrite_word_file(path: Path, change: Callable[[list], object]) -> None:
    table = pq.read_table(path)
    vectors = table["mswc_embedding_vector"].to_pylist()
    change(vectors)
    at = table.column_names.index("mswc_embedding_vector")
    pq.write_table(table.set_column(at, "mswc_embedding_vector",
                                    pa.array(vectors, pa.list_(pa.float32()))), path)


EN = "dataperf_en_data"
PT = "dataperf_pt_data"


def test_not_a_directory(tmp_path: Path) -> None:
    _fails(tmp_path / "nothing", "is not a directory with the original DataPerf files")


def test_no_language_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _fails(tmp_path / "data", r"no language folder under .*data: expected dataperf_en_data/, "
           r"dataperf_id_data/ or dataperf_pt_data/, each with train_embeddings/, "
           r"allowed_training_set\.yaml and eval\.yaml")


def test_language_folder_with_another_name(copy: Path) -> None:
    renamed = copy / EN
    renamed.rename(copy / "english")
    _fails(copy / "english", r"english looks like one language's folder but is not named "
           r"dataperf_\{lang\}_data")


def test_language_folder_of_an_unknown_language(copy: Path) -> None:
    (copy / EN).rename(copy / "dataperf_fr_data")
    _fails(copy / "dataperf_fr_data", r"language 'fr' is not one of the challenge's \(en, id, pt\)")


def test_missing_files_are_listed_together(copy: Path) -> None:
    (copy / PT / ALLOWED).unlink()
    (copy / PT / EVAL).unlink()
    shutil.rmtree(copy / PT / "train_embeddings")
    message = _fails(copy, r"3 problems with the original files under .*dataperf_pt_data:")
    assert f"{PT}/{ALLOWED} is missing" in message
    assert f"{PT}/{EVAL} is missing" in message
    assert f"{PT}/train_embeddings/ is missing" in message


def test_missing_word_file(copy: Path) -> None:
    (copy / EN / "eval_embeddings" / "river.parquet").unlink()
    _fails(copy, r"eval_embeddings/river\.parquet is missing \(the word file of 2 clip\(s\) of "
           r"eval\.yaml, e\.g\. 'river/common_voice_en_\d+\.opus'")


def test_missing_target_word_file(copy: Path) -> None:
    (copy / PT / "train_embeddings" / "não.parquet").unlink()
    _fails(copy, r"train_embeddings/não\.parquet is missing \(the word file of 4 clip\(s\) of "
           r"allowed_training_set\.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("targets: [unclosed\n", r"allowed_training_set\.yaml is not valid YAML"),
    ("- a\n- b\n", r"allowed_training_set\.yaml must be a mapping shaped \{targets: "
                   r"\{word: \[clip_id, \.\.\.\]\}, nontargets: \[clip_id, \.\.\.\]\}"),
    ("targets: {left: [a]}\n", r"allowed_training_set\.yaml must be a mapping shaped"),
    ("targets: [left, right]\nnontargets: []\n",
     r"allowed_training_set\.yaml: targets must be a mapping of target words to lists of clip "
     r"IDs, not a list"),
    ("targets: {}\nnontargets: [cat/a]\n", r"allowed_training_set\.yaml: targets names no "
                                           "target word"),
    ("targets: {left: [a, 17, null]}\nnontargets: [cat/a]\n",
     r"allowed_training_set\.yaml: targets\.left has 2 clip ID\(s\) that are not non-empty "
     r"strings: 17, None"),
    ("targets: {left: }\nnontargets: cat/a\n",
     r"2 problems .*\n- .*targets\.left must be a list of clip IDs, not nothing\n"
     r"- .*nontargets must be a list of clip IDs, not a str"),
    ("targets: {3: [a]}\nnontargets: []\n", r"target word 3 is not a string"),
    ("targets: {nontarget: [a]}\nnontargets: []\n",
     r"target word 'nontarget' is reserved for the nontarget class"),
    ("targets: {../up: [a]}\nnontargets: []\n",
     r"target word '\.\./up' cannot name a word file \.\./up\.parquet inside the embeddings "
     "folder"),
])
def test_malformed_yaml(copy: Path, text: str, message: str) -> None:
    (copy / EN / ALLOWED).write_text(text, encoding="utf-8")
    message = _fails(copy, message)
    assert ALLOWED in message


def test_duplicate_ids_in_a_yaml(copy: Path) -> None:
    def repeat(data: dict) -> None:
        data["targets"]["stop"].append(data["targets"]["go"][1])
        data["nontargets"].append(data["nontargets"][3])

    _edit_yaml(copy / EN / EVAL, repeat)
    _fails(copy, r"eval\.yaml: 2 clip ID\(s\) are listed more than once: 'go/common_voice_en_"
           r"\d+\.opus', '\w+/common_voice_en_\d+\.opus'")


def test_clip_both_target_and_nontarget(copy: Path) -> None:
    _edit_yaml(copy / PT / ALLOWED,
               lambda data: data["nontargets"].append(data["targets"]["sim"][0]))
    _fails(copy, r"dataperf_pt_data/allowed_training_set\.yaml: 1 clip\(s\) are listed both as "
           r"a target and as a nontarget: 'sim/common_voice_pt_\d+\.opus'")


def test_target_words_must_agree(copy: Path) -> None:
    def rename(data: dict) -> None:
        data["targets"]["halt"] = data["targets"].pop("stop")

    _edit_yaml(copy / EN / EVAL, rename)
    _fails(copy, r"allowed_training_set\.yaml and eval\.yaml of .*dataperf_en_data name "
           "different target words: go, left, right, stop, yes vs go, halt, left, right, yes")


@pytest.mark.parametrize("clip", ["../escape/x.opus", "/etc/passwd", "..", "..\\x.opus"])
def test_hostile_nontarget_word_file(copy: Path, clip: str) -> None:
    _edit_yaml(copy / EN / ALLOWED, lambda data: data["nontargets"].append(clip))
    _fails(copy, r"allowed_training_set\.yaml: nontarget ID\(s\) .* name the word file .*"
           r"\.parquet \(their first path component\), which is not a file name inside the "
           "embeddings folder")


def test_listed_ids_missing_from_their_word_files(copy: Path) -> None:
    def add(data: dict) -> None:
        data["targets"]["left"] += ["left/not-there-1.opus", "left/not-there-2.opus"]
        data["nontargets"].append("cat/not-there-3.opus")

    _edit_yaml(copy / EN / ALLOWED, add)
    message = _fails(copy, "2 problems with the original files under .*train_embeddings")
    assert ("train_embeddings/left.parquet has no row for 2 clip ID(s) listed in "
            "allowed_training_set.yaml: 'left/not-there-1.opus', 'left/not-there-2.opus'"
            in message)
    assert ("train_embeddings/cat.parquet has no row for 1 clip ID(s) listed in "
            "allowed_training_set.yaml: 'cat/not-there-3.opus'" in message)


def test_word_file_without_the_columns(copy: Path) -> None:
    path = copy / EN / "train_embeddings" / "dog.parquet"
    pq.write_table(pq.read_table(path).rename_columns(["id", "embedding", "index"]), path)
    _fails(copy, r"dog\.parquet has no column clip_id, mswc_embedding_vector \(expected columns "
           r"clip_id, mswc_embedding_vector\)")


def test_word_file_that_is_not_parquet(copy: Path) -> None:
    (copy / PT / "eval_embeddings" / "lua.parquet").write_bytes(b"not parquet")
    _fails(copy, r"cannot read .*dataperf_pt_data/eval_embeddings/lua\.parquet as parquet")


def test_vectors_of_different_lengths_in_one_file(copy: Path) -> None:
    _rewrite_word_file(copy / EN / "train_embeddings" / "left.parquet",
                     lambda vectors: vectors[2].append(0.5))
    _fails(copy, r"left\.parquet: mswc_embedding_vector: embeddings have different lengths "
           r"\(from 8 to 9 values\)")


def test_vectors_of_different_lengths_in_two_files(copy: Path) -> None:
    _rewrite_word_file(copy / EN / "train_embeddings" / "tree.parquet",
                     lambda vectors: [v.append(0.5) for v in vectors])
    _fails(copy, r"train_embeddings: embeddings have different lengths \(8 in cat\.parquet, "
           r"9 in tree\.parquet\)")


def test_eval_and_train_vectors_of_different_lengths(copy: Path) -> None:
    for path in (copy / PT / "eval_embeddings").glob("*.parquet"):
        _rewrite_word_file(path, lambda vectors: [v.extend([0.0, 1.0]) for v in vectors])
    _fails(copy, r"eval_embeddings: the evaluation clips' embeddings have 10 values, the "
           r"training clips' \(.*train_embeddings\) 8")


def test_languages_with_different_lengths(copy: Path) -> None:
    for path in (copy / PT).glob("*/*.parquet"):
        _rewrite_word_file(path, lambda vectors: [v.append(0.0) for v in vectors])
    _fails(copy, r"the languages' embeddings have different lengths \(dataperf_en_data: 8, "
           r"dataperf_pt_data: 9\)")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_vectors(copy: Path, value: float) -> None:
    def spoil(vectors: list) -> None:
        vectors[0][3] = value

    _rewrite_word_file(copy / EN / "eval_embeddings" / "yes.parquet", spoil)
    _fails(copy, r"eval_embeddings/yes\.parquet: mswc_embedding_vector: some embeddings have "
           "empty, NaN or infinite values")


def test_missing_vector(copy: Path) -> None:
    def blank(vectors: list) -> None:
        vectors[1] = None

    _rewrite_word_file(copy / PT / "eval_embeddings" / "sim.parquet", blank)
    _fails(copy, r"sim\.parquet: mswc_embedding_vector: 1 row\(s\) have no embedding")


def test_one_clip_with_two_different_vectors_in_its_file(copy: Path) -> None:
    path = copy / EN / "train_embeddings" / "go.parquet"
    table = pq.read_table(path)
    ids = table["clip_id"].to_pylist()
    ids[1] = ids[2]  # two rows of the same (listed) clip, different vectors
    pq.write_table(table.set_column(0, "clip_id", pa.array(ids, pa.string())), path)
    _fails(copy, r"go\.parquet has several rows with different vectors for 1 clip ID\(s\): "
           r"'go/common_voice_en_\d+\.opus'")


def test_clip_id_of_two_languages_with_different_vectors(
        original: Original, copy: Path) -> None:
    shared = original.languages["en"].allowed["targets"]["go"][0]
    _edit_yaml(copy / PT / ALLOWED, lambda data: data["nontargets"].append(shared))
    write_word_file(copy / PT / "train_embeddings" / "go.parquet",
                  [(shared, np.zeros(DIM, np.float32))])
    _fails(copy, r"1 allowed training clip ID\(s\) appear in two languages with different "
           rf"vectors: '{shared}' \(dataperf_en_data and dataperf_pt_data\)")


def test_each_candidate_records_its_row_in_its_word_file(original: Original,
                                                        edition: Edition) -> None:
    """The official profile trains a word's clips in their word file's order."""
    candidates = edition.read_table("public/candidates.parquet").to_pylist()
    for lang in original.languages:
        folder = original.root / f"dataperf_{lang}_data" / "train_embeddings"
        rows = {}
        for path in folder.glob("*.parquet"):
            for k, clip in enumerate(pq.read_table(path).column("clip_id").to_pylist()):
                rows.setdefault(clip, k)
        mine = [c for c in candidates if c["task"] == f"{lang}_25"]
        assert mine
        assert all(c["file_row"] == rows[c["id"]] for c in mine)
