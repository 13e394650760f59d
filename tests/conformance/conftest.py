"""The conformance suite: the original DataPerf reference evaluators, unmodified, run next to
``dataperf`` on the same files in their original layouts.

The originals are public repositories and are never vendored. Point ``DATAPERF_ORIGINALS`` at a
folder holding checkouts named after the repositories (``dataperf-speech-example``,
``dataperf-vision-selection``, ``dataperf-vision-debugging``,
``Data_Acquisition_for_ML_Benchmark``) and run ``make conformance ORIGINALS=DIR``. Without the
variable every test here is skipped, so the suite costs nothing in CI.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ORIGINALS_VARIABLE = "DATAPERF_ORIGINALS"
PYTHON_VARIABLE = "DATAPERF_ORIGINALS_PYTHON"


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


@pytest.fixture
def original_python():
    """``original_python(modules)``: the interpreter that runs the originals
    (``DATAPERF_ORIGINALS_PYTHON``, default: this one), or a skip where it cannot import
    ``modules`` ("pandas, fire"): each original needs the packages of its own requirements."""

    def python(modules: str) -> str:
        found = os.environ.get(PYTHON_VARIABLE, sys.executable)
        check = subprocess.run([found, "-c", f"import {modules}"], capture_output=True,
                               text=True)
        if check.returncode:
            last = (check.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"{found} cannot run the original (it needs {modules}; set "
                        f"{PYTHON_VARIABLE}): {last}")
        return found

    return python
