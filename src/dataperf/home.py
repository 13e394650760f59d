"""Where DataPerf keeps user data: built and imported editions, caches (``DATAPERF_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED = Path(__file__).with_name("bundled")


def home() -> Path:
    """``$DATAPERF_HOME``, by default ``~/.dataperf``."""
    configured = os.environ.get("DATAPERF_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".dataperf"


def editions_dir() -> Path:
    return home() / "editions"


def cache_dir() -> Path:
    return home() / "cache"
