"""The conformance suite: the original DataPerf reference evaluators, unmodified, run next to
``dataperf`` on the same files in their original layouts.

The originals are public repositories and are never vendored. Point ``DATAPERF_ORIGINALS`` at a
folder holding checkouts named after the repositories (``dataperf-speech-example``,
``dataperf-vision-selection``, ``dataperf-vision-debugging``,
``Data_Acquisition_for_ML_Benchmark``) and run ``make conformance ORIGINALS=DIR``. Without the
variable every test here is skipped, so the suite costs nothing in CI.
"""

import os
from pathlib import Path

import pytest

ORIGINALS_VARIABLE = "DATAPERF_ORIGINALS"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.conformance)


@pytest.fixture
def original():
    """``original(name)``: the checkout of the original repository ``name``, or a skip."""

    def checkout(name: str) -> Path:
        folder = os.environ.get(ORIGINALS_VARIABLE)
        if not folder:
            pytest.skip(f"{ORIGINALS_VARIABLE} is not set: the original evaluators are absent")
        path = Path(folder) / name
        if not path.is_dir():
            pytest.skip(f"no checkout of {name} in {folder}")
        return path

    return checkout
