"""Helpers for the browser tests (importable from test modules)."""

from __future__ import annotations

import os
from pathlib import Path


def screenshot(page: object, name: str) -> None:
    """Save a full-page screenshot for the docs when DATAPERF_SCREENSHOTS is set."""
    target = os.environ.get("DATAPERF_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
