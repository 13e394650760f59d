"""The offline builder of vision cleaning, on a small subset of the real images and network."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from build_harness import (
    HAVE_SOURCE,
    assert_rebuild_is_identical,
    assert_refuses_existing_directory,
    build_with_progress,
    needs_network,
    needs_source,
)
from dataperf.challenges.vision_cleaning import build as vc
from dataperf.challenges.vision_selection import build as vs
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import EditionError

POOL = 200
SIZES = vc.TaskSizes(train=20, validation=6, test=10)
LARGE = vc.TaskSizes(train=30, validation=6, test=20)

EMBEDDING = pa.list_(pa.float16(), vs.EMBEDDING_DIM)
EXPECTED_SCHEMAS = {
    "public/train.parquet": pa.schema([("task", pa.string()), ("index", pa.int32()),
                                       ("id", pa.string()), ("embedding", EMBEDDING),
                                       ("label", pa.int8())]),
    "public/validation.parquet": pa.schema([("task", pa.string()), ("id", pa.string()),
                                            ("embedding", EMBEDDING), ("label", pa.int8())]),
    "hidden/test.parquet": pa.schema([("task", pa.string()), ("id", pa.string()),
                                      ("embedding", EMBEDDING), ("label", pa.int8())]),
    "hidden/truth.parquet": pa.schema([("task", pa.string()), ("index", pa.int32()),
                                       ("label", pa.int8())]),
}
TASKS = [
    "Trouser-random", "Trouser-annotator", "Sneaker-random", "Sneaker-annotator",
    "Shirt-random", "Shirt-annotator", "Bag-random", "Bag-annotator", "Shirt-annotator-large",
]


def small_build(out: Path, cache: Path, **options: object) -> Edition:
    return vc.build(out, pool_size=POOL, sizes=SIZES, large_sizes=LARGE, cache_dir=cache,
                    **options)


@pytest.fixture(scope="module")
def splits() -> dict[str, vs.Split]:
    if not HAVE_SOURCE:
        pytest.skip("needs Fashion-MNIST")
    return {s: vs.read_split(vs.DEFAULT_SOURCE, s) for s in vs.SPLITS}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Edition, list[tuple]]:
    return build_with_progress(tmp_path_factory, "vision-cleaning", small_build)


@pytest.fixture(scope="module")
def plan(splits: dict[str, vs.Split]) -> vc.Plan:
    return vc.make_plan(splits["train"].images, splits["train"].labels, splits["t10k"].labels,
                        pool_size=POOL, sizes=SIZES, large_sizes=LARGE,
                        noise_rate=vc.NOISE_RATE, seed=0)


@pytest.fixture(scope="module")
def full_plan(splits: dict[str, vs.Split]) -> vc.Plan:
    """The plan of the real edition's sizes (no network needed)."""
    return vc.make_plan(splits["train"].images, splits["train"].labels, splits["t10k"].labels,
                        pool_size=20_000, sizes=vc.DEFAULT_SIZES,
                        large_sizes=vc.DEFAULT_LARGE_SIZES, noise_rate=vc.NOISE_RATE, seed=0)


def read(edition: Edition, name: str) -> dict[str, list]:
    return pq.read_table(edition.path / name).to_pydict()


def per_task(table: dict[str, list], column: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for task, value in zip(table["task"], table[column], strict=True):
        out.setdefault(task, []).append(value)
    return out


@needs_source
@needs_network
class TestSmallBuild:
    def test_manifest(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = Edition.open(built[0].path)
        manifest = edition.manifest
        assert (manifest.challenge, manifest.edition) == ("vision-cleaning", "offline")
        assert manifest.builder == "dataperf.challenges.vision_cleaning.build"
        assert manifest.builder_version == vc.BUILDER_VERSION
        assert list(edition.tasks) == TASKS == vc.task_names()
        assert set(manifest.files) == set(EXPECTED_SCHEMAS)
        assert [(s.name, s.licence) for s in manifest.sources] == [
            ("Fashion-MNIST", "MIT"),
            ("Open-NSFW image network", "BSD-2-Clause (weights, Yahoo); MIT (package)")]
        parameters = manifest.parameters
        assert parameters["seed"] == 0
        assert parameters["noise"]["rate"] == 0.3
        assert parameters["tasks"]["Shirt-annotator-large"]["train_size"] == LARGE.train
        assert parameters["tasks"]["Bag-random"] == {
            "concept": "Bag", "class": 8, "noise": "random", "train_size": SIZES.train,
            "validation_size": SIZES.validation, "test_size": SIZES.test, "flipped": 6,
            "flipped_positives": parameters["tasks"]["Bag-random"]["flipped_positives"]}

    @pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMAS))
    def test_schema(self, built: tuple[Edition, list[tuple]], name: str) -> None:
        assert pq.read_table(built[0].path / name).schema.equals(EXPECTED_SCHEMAS[name])

    def test_sizes_indices_and_balance(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]
        train, truth = read(edition, "public/train.parquet"), read(edition, "hidden/truth.parquet")
        assert (train["task"], train["index"]) == (truth["task"], truth["index"])
        for name, size_of in [("public/train.parquet", "train"),
                              ("public/validation.parquet", "validation"),
                              ("hidden/test.parquet", "test")]:
            labels = per_task(truth if name == "public/train.parquet" else read(edition, name),
                              "label")
            assert sorted(labels) == sorted(TASKS)
            for task, values in labels.items():
                n = getattr(LARGE if task.endswith("-large") else SIZES, size_of)
                assert len(values) == n
                assert sum(values) == n // 2, "each split is half positive"
        for task, indices in per_task(train, "index").items():
            assert indices == list(range(len(indices))), task

    def test_noise_rate_is_exactly_30_percent(self, built: tuple[Edition, list[tuple]]) -> None:
        edition = built[0]
        noisy = per_task(read(edition, "public/train.parquet"), "label")
        true = per_task(read(edition, "hidden/truth.parquet"), "label")
        for task in TASKS:
            flips = sum(a != b for a, b in zip(noisy[task], true[task], strict=True))
            assert flips == round(0.3 * len(true[task])), task
            assert flips == edition.manifest.parameters["tasks"][task]["flipped"]

    def test_ids_are_opaque_and_unique(self, built: tuple[Edition, list[tuple]]) -> None:
        ids = [i for name in ("public/train.parquet", "public/validation.parquet",
                              "hidden/test.parquet") for i in read(built[0], name)["id"]]
        assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
        assert len(set(ids)) == len(ids)

    def test_plan_and_labels_match_the_edition(
        self, built: tuple[Edition, list[tuple]], plan: vc.Plan, splits: dict[str, vs.Split]
    ) -> None:
        edition = built[0]
        train = read(edition, "public/train.parquet")
        truth = read(edition, "hidden/truth.parquet")
        validation = read(edition, "public/validation.parquet")
        test = read(edition, "hidden/test.parquet")
        assert [t.name for t in plan.tasks] == TASKS
        for task in plan.tasks:
            cls = vc.CONCEPT_CLASSES[task.concept]
            rows = [k for k, t in enumerate(train["task"]) if t == task.name]
            assert [train["id"][k] for k in rows] == task.train_ids
            assert [truth["label"][k] for k in rows] == \
                (splits["train"].labels[task.train] == cls).astype(int).tolist()
            expected = dict(zip(task.test_ids,
                                (splits["t10k"].labels[task.test] == cls).astype(int).tolist(),
                                strict=True))
            assert {i: lab for t, i, lab in zip(test["task"], test["id"], test["label"],
                                                strict=True) if t == task.name} == expected
            clean = {i for t, i in zip(validation["task"], validation["id"], strict=True)
                     if t == task.name}
            assert clean == set(task.validation_ids)
            # Training and validation rows of a task are different images of the pool.
            assert not set(task.train.tolist()) & set(task.validation.tolist())
            assert set(task.train.tolist()) | set(task.validation.tolist()) <= \
                set(plan.pool.tolist())

    def test_same_vectors_as_vision_selection(
        self, built: tuple[Edition, list[tuple]], plan: vc.Plan, tmp_path: Path
    ) -> None:
        """An image has the same float16 vector here as in vision selection's edition."""
        edition = built[0]
        selection = vs.build(tmp_path / "selection", pool_size=POOL, test_size=20, n_examples=3,
                             cache_dir=edition.path.parent / "cache")
        splits_plan = vc.selection_pool(
            vs.read_split(vs.DEFAULT_SOURCE, "train").labels,
            vs.read_split(vs.DEFAULT_SOURCE, "t10k").labels, pool_size=POOL, seed=0)
        pool = pq.read_table(selection.path / "public/pool.parquet")
        by_id = dict(zip(pool["id"].to_pylist(), embedding_array(pool["embedding"]),
                         strict=True))
        vector_of_image = {int(index): by_id[image_id] for index, image_id in
                           zip(splits_plan.pool, splits_plan.pool_ids, strict=True)}
        train = pq.read_table(edition.path / "public/train.parquet")
        vectors = dict(zip(train["id"].to_pylist(), embedding_array(train["embedding"]),
                           strict=True))
        for task in plan.tasks:
            for image, image_id in zip(task.train, task.train_ids, strict=True):
                assert np.array_equal(vectors[image_id].view(np.uint16),
                                      vector_of_image[int(image)].view(np.uint16))

    def test_embeddings_are_finite_float16(self, built: tuple[Edition, list[tuple]]) -> None:
        for name in ("public/train.parquet", "public/validation.parquet", "hidden/test.parquet"):
            matrix = embedding_array(pq.read_table(built[0].path / name)["embedding"])
            assert matrix.dtype == np.float16
            assert np.isfinite(matrix).all()
            assert (np.abs(matrix).max(axis=0)[:10] > 0).all()

    def test_progress_is_reported(self, built: tuple[Edition, list[tuple]]) -> None:
        steps = [call for call in built[1] if call[0] == "embedding images"]
        assert steps
        assert steps[-1][1] == steps[-1][2] > POOL
        assert built[1][-1] == ("writing edition", 1, 1)

    def test_rebuild_is_identical_with_and_without_cache(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        assert_rebuild_is_identical(built[0], small_build, tmp_path)

    def test_refuses_existing_directory(
        self, built: tuple[Edition, list[tuple]], tmp_path: Path
    ) -> None:
        assert_refuses_existing_directory(small_build, tmp_path, built[0].path.parent / "cache")


# Plans (no network) ---------------------------------------------------------------------------


@needs_source
def test_pool_and_annotator_are_vision_selections(splits: dict[str, vs.Split]) -> None:
    labels = splits["train"].labels, splits["t10k"].labels
    ours = vc.selection_pool(*labels, pool_size=20_000, seed=0)
    theirs = vs.make_plan(*labels, pool_size=20_000, test_size=1_000, n_examples=20, seed=0)
    assert np.array_equal(ours.pool, theirs.pool)
    assert ours.pool_ids == theirs.pool_ids
    assert np.array_equal(ours.annotator_set, theirs.annotator_set)
    assert np.array_equal(ours.annotator_labels, theirs.annotator_labels)


@needs_source
def test_full_plan_sizes_and_exact_noise(full_plan: vc.Plan) -> None:
    assert [t.name for t in full_plan.tasks] == TASKS
    for task in full_plan.tasks:
        sizes = vc.DEFAULT_LARGE_SIZES if task.name.endswith("-large") else vc.DEFAULT_SIZES
        assert (len(task.train), len(task.validation), len(task.test)) == \
            (sizes.train, sizes.validation, sizes.test)
        assert len(task.flipped) == round(0.3 * sizes.train)
        assert (task.noisy_labels != task.train_labels).sum() == len(task.flipped)
        assert task.train_labels.sum() == sizes.train // 2
        assert len(set(task.train.tolist())) == sizes.train


@needs_source
def test_annotator_noise_is_structured_and_class_dependent(
    full_plan: vc.Plan, splits: dict[str, vs.Split]
) -> None:
    """Annotator flips concentrate on look-alike classes; random flips do not."""
    classes = splits["train"].labels

    def flip_rate_by_class(task: vc.TaskPlan) -> dict[int, float]:
        flipped = np.zeros(len(task.train), bool)
        flipped[task.flipped] = True
        image_classes = classes[task.train]
        return {int(c): float(flipped[image_classes == c].mean())
                for c in np.unique(image_classes)}

    tasks = {t.name: t for t in full_plan.tasks}
    dress, sandal = vs.CLASS_NAMES.index("Dress"), vs.CLASS_NAMES.index("Sandal")
    trouser = flip_rate_by_class(tasks["Trouser-annotator"])
    sneaker = flip_rate_by_class(tasks["Sneaker-annotator"])
    # The annotator was taught to confuse dresses with trousers and sandals with sneakers.
    assert trouser[dress] > 0.9
    assert sneaker[sandal] > 0.9
    assert trouser[dress] > 3 * np.mean([r for c, r in trouser.items() if c != dress])
    for concept in vc.CONCEPTS:
        structured = flip_rate_by_class(tasks[f"{concept}-annotator"])
        random = flip_rate_by_class(tasks[f"{concept}-random"])
        # Structured: one class is mislabelled most of the time, several never.
        assert max(structured.values()) > 0.55, concept
        assert sum(r == 0 for r in structured.values()) >= 3, concept
        # Random: every class gets some flips.
        assert min(random.values()) > 0, concept


@needs_source
def test_plan_is_seeded(splits: dict[str, vs.Split]) -> None:
    arguments = (splits["train"].images, splits["train"].labels, splits["t10k"].labels)
    options = {"pool_size": POOL, "sizes": SIZES, "large_sizes": None, "noise_rate": 0.3}
    a, b = vc.make_plan(*arguments, seed=0, **options), vc.make_plan(*arguments, seed=0, **options)
    c = vc.make_plan(*arguments, seed=1, **options)
    assert [t.name for t in a.tasks] == TASKS[:-1]
    for x, y, z in zip(a.tasks, b.tasks, c.tasks, strict=True):
        assert np.array_equal(x.train, y.train)
        assert x.train_ids == y.train_ids
        assert np.array_equal(x.flipped, y.flipped)
        assert not np.array_equal(x.train, z.train)


@needs_source
def test_impossible_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EditionError, match="too few"):
        vc.build(tmp_path / "out", pool_size=POOL, sizes=vc.TaskSizes(300, 100, 500),
                 large_sizes=None, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()


def test_limit_sizes_fit_their_pool() -> None:
    for limit in (200, 1_000, 5_000):
        small, large = vc.limit_sizes(limit)
        for sizes in (small, large):
            assert (sizes.train + sizes.validation) / 2 <= limit / 10


def test_random_flips_are_exact() -> None:
    rng = np.random.default_rng(0)
    for n in (10, 300, 3_000):
        flips = vc.random_flips(n, 0.3, rng)
        assert len(flips) == len(set(flips.tolist())) == round(0.3 * n)
        assert flips.min() >= 0
        assert flips.max() < n


def test_annotator_flips_take_the_most_confusable_rows() -> None:
    wrong = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.95, 0.0, 0.3, 0.6, 0.4])
    flips = vc.annotator_flips(wrong, 0.3, np.random.default_rng(0))
    assert flips.tolist() == [1, 3, 5]
    tied = vc.annotator_flips(np.full(10, 0.5), 0.3, np.random.default_rng(0))
    assert len(tied) == 3
    assert np.array_equal(tied, vc.annotator_flips(np.full(10, 0.5), 0.3,
                                                   np.random.default_rng(0)))


def test_task_names_are_edition_safe() -> None:
    from dataperf.editions import task_names_problem

    assert task_names_problem(vc.task_names()) is None
    assert vc.task_names(large=False) == TASKS[:-1]
