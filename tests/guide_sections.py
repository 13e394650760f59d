"""The organizer guide's worked examples of the cleaning and acquisition kinds, for the tests
that run them: a section's blocks by fence name (``py``, ``yml``, ``shell``, ``text``: names
``tests/test_docs.py`` leaves alone), the files its Python block writes, and the check that a
broken challenge file is refused with exactly the report the section shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from official_layout import dataperf
from test_docs import DOCS

GUIDE = DOCS / "organizer-guide.md"


def section_blocks(heading: str) -> dict[str, str]:
    """The blocks of the guide's section ``heading`` by fence name, one of each."""
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(heading)
    section = text[start:text.index("\n## ", start + len(heading))]
    found: dict[str, str] = {}
    for language, body in re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M):
        assert language not in found, f"two {language} blocks in {heading!r}"
        found[language] = body
    assert sorted(found) == ["py", "shell", "text", "yml"]
    return found


def write_section_files(heading: str, directory: Path, name: str) -> Path:
    """The section's files, written by its own Python block in ``directory``, and its challenge
    file ``{name}.yaml`` (the path returned)."""
    blocks = section_blocks(heading)
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-c", blocks["py"]], cwd=directory,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    spec = directory / f"{name}.yaml"
    spec.write_text(blocks["yml"], encoding="utf-8")
    return spec


def assert_refused_as_shown(heading: str, spec: dict[str, Any], cwd: Path, name: str,
                            home: Path) -> None:
    """``dataperf data create`` of the broken ``spec`` (written as ``cwd/{name}.yaml``) exits
    with 2, prints the section's report exactly, and writes nothing under ``home``."""
    (cwd / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = dataperf("data", "create", f"{name}.yaml", home=home, cwd=cwd)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.strip() == section_blocks(heading)["text"].strip()
    assert not home.exists() or not any(home.rglob("*"))
