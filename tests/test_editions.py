import json

import numpy as np
import pyarrow as pa
import pytest

from dataperf.editions import (
    Edition,
    Source,
    embedding_array,
    embedding_column,
    export_public,
    write_edition,
)
from dataperf.exceptions import EditionError, HiddenDataUnavailableError, IntegrityError

SOURCE = Source(name="test data", licence="CC0-1.0", origin="generated in the test")


def make(path, **overrides):
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    options = dict(
        challenge="demo", edition="offline", builder="tests", builder_version="1",
        tasks=["A"], sources=[SOURCE],
        tables={
            "public/pool.parquet": pa.table({"id": ["a", "b", "c", "d"],
                                             "embedding": embedding_column(matrix)}),
            "hidden/test.parquet": pa.table({"task": ["A"], "label": pa.array([1], pa.int8())}),
        },
    )
    options.update(overrides)
    return write_edition(path, **options)


def test_written_edition_opens_and_verifies(tmp_path):
    written = make(tmp_path / "ed")
    opened = Edition.open(tmp_path / "ed")
    assert opened.content_hash == written.content_hash
    assert opened.tasks == ("A",)
    assert set(opened.manifest.files) == {"public/pool.parquet", "hidden/test.parquet"}
    pool = opened.read_table("public/pool.parquet")
    array = embedding_array(pool.column("embedding"))
    assert array.dtype == np.float16
    np.testing.assert_array_equal(array, np.arange(12).reshape(4, 3))


def test_builds_are_reproducible(tmp_path):
    assert make(tmp_path / "one").content_hash == make(tmp_path / "two").content_hash


def test_changed_file_is_refused_with_a_clear_message(tmp_path):
    make(tmp_path / "ed")
    target = tmp_path / "ed" / "public" / "pool.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"was changed: public/pool.parquet does not match"):
        Edition.open(tmp_path / "ed")


def test_missing_file_is_refused(tmp_path):
    make(tmp_path / "ed")
    (tmp_path / "ed" / "hidden" / "test.parquet").unlink()
    with pytest.raises(IntegrityError, match=r"incomplete: hidden/test.parquet is missing"):
        Edition.open(tmp_path / "ed")


def test_not_an_edition(tmp_path):
    with pytest.raises(EditionError, match=r"is not an edition: it has no manifest.json"):
        Edition.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(EditionError, match=r"is not a valid edition manifest"):
        Edition.open(tmp_path)


def test_future_format_version_is_refused(tmp_path):
    make(tmp_path / "ed")
    manifest = tmp_path / "ed" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(EditionError, match=r"format version 99"):
        Edition.open(tmp_path / "ed")


def test_export_public_leaves_hidden_data_behind(tmp_path):
    edition = make(tmp_path / "ed")
    copy = export_public(edition, tmp_path / "copy")
    assert not (tmp_path / "copy" / "hidden").exists()
    assert copy.manifest.public_only
    with pytest.raises(HiddenDataUnavailableError, match=r"without hidden data"):
        copy.file("hidden/test.parquet")
    with pytest.raises(EditionError, match=r"already exists"):
        export_public(edition, tmp_path / "copy")


@pytest.mark.parametrize("name", ["pool.parquet", "../escape.parquet", "/abs.parquet",
                                  "public/../../x.parquet"], ids=["no-part", "dotdot", "absolute",
                                                                  "nested-dotdot"])
def test_files_must_lie_under_public_or_hidden(tmp_path, name):
    with pytest.raises(EditionError, match=r"must lie under public/ or hidden/"):
        make(tmp_path / "ed", tables={name: pa.table({"x": [1]})})
    assert not (tmp_path / "ed").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tasks", [["a/b"], ["A", "a"], [".."]], ids=["slash", "case-dup", "dots"])
def test_unsafe_task_names_are_refused(tmp_path, tasks):
    with pytest.raises(EditionError, match=r"task name|unique"):
        make(tmp_path / "ed", tasks=tasks)
    assert list(tmp_path.iterdir()) == []


def test_existing_edition_is_not_overwritten_by_accident(tmp_path):
    make(tmp_path / "ed")
    with pytest.raises(EditionError, match=r"already exists"):
        make(tmp_path / "ed")
    make(tmp_path / "ed", overwrite=True)


def test_the_bundled_editions_of_every_challenge_stay_under_40_mb():
    from dataperf.home import BUNDLED

    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 40 * 10**6, f"the bundled editions take {total / 10**6:.1f} MB"
