"""The docs' examples are run: every `$ dataperf ...` line, the Python blocks, the YAML file."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dataperf.registry import get_challenge

DOCS = Path(__file__).resolve().parents[1] / "docs"
DATAPERF = str(Path(sys.executable).with_name("dataperf"))


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def commands(path: Path) -> list[list[str]]:
    found = []
    for block in blocks(path, "console"):
        if "path/to" in block:  # needs the user's own files (e.g. original DataPerf data)
            continue
        for line in block.splitlines():
            if line.startswith("$ dataperf "):
                found.append(shlex.split(line[2:].split("  #")[0]))
    return found


def run(words: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATAPERF_HOME": str(home), "COLUMNS": "120"}
    result = subprocess.run([DATAPERF, *words[1:]], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(words)} failed:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.slow
def test_user_guide_commands_run(tmp_path):
    listed = commands(DOCS / "user-guide.md")
    assert len(listed) >= 10
    for words in listed:
        if words[1:3] == ["data", "build"] and os.environ.get("DATAPERF_SKIP_BUILD"):
            continue
        run(words, tmp_path, tmp_path / "home")
    assert (tmp_path / "runs" / "fps-cv").is_dir()


def test_readme_local_loop_runs(tmp_path):
    readme = DOCS.parent / "README.md"
    for words in commands(readme):
        run(words, tmp_path, tmp_path / "home")
    assert sorted(p.name for p in (tmp_path / "my-run").iterdir()) == sorted(
        f"{t}.csv" for t in get_challenge("vision-selection").edition().tasks)


def test_user_guide_python_example_runs(capsys):
    for block in blocks(DOCS / "user-guide.md", "python"):
        exec(compile(block, "user-guide.md", "exec"), {})
    assert re.search(r"\d+ rows, \d+ positives", capsys.readouterr().out)


def write_organizer_files(directory: Path) -> None:
    """The organizer guide's files, made from real data: the bundled Fashion-MNIST edition."""
    edition = get_challenge("vision-selection").edition()
    pool = edition.read_table("public/pool.parquet").slice(0, 3000)
    pq.write_table(pa.table({"image_id": pool.column("id"),
                             "vector": pool.column("embedding").cast(
                                 pa.list_(pa.float32()))}), directory / "pool.parquet")
    test = edition.read_table("hidden/test.parquet")
    pq.write_table(pa.table({"image_id": test.column("id"), "garment": test.column("task"),
                             "vector": test.column("embedding").cast(pa.list_(pa.float32())),
                             "is_garment": test.column("label")}), directory / "test.parquet")
    pool_ids = set(pool.column("id").to_pylist())
    examples = edition.read_table("public/examples.parquet")
    keep = np.array([i in pool_ids for i in examples.column("id").to_pylist()])
    examples = examples.filter(pa.array(keep))
    pacsv.write_csv(pa.table({"image_id": examples.column("id"),
                              "garment": examples.column("task")}), directory / "examples.csv")
    weak = edition.read_table("public/weak_labels.parquet")
    weak = weak.filter(pa.array([i in pool_ids for i in weak.column("id").to_pylist()]))
    pacsv.write_csv(pa.table({"image_id": weak.column("id"), "garment": weak.column("task"),
                              "p": weak.column("confidence")}), directory / "weak.csv")


def test_organizer_guide_example_runs(tmp_path):
    (yaml_block,) = blocks(DOCS / "organizer-guide.md", "yaml")
    (tmp_path / "garment-selection.yaml").write_text(yaml_block, encoding="utf-8")
    write_organizer_files(tmp_path)
    listed = commands(DOCS / "organizer-guide.md")
    assert any(w[1:3] == ["data", "create"] for w in listed)
    for words in listed:
        result = run(words, tmp_path, tmp_path / "home")
        if words[1] == "list":
            assert "garment-selection" in result.stdout
        if words[1] == "evaluate":
            assert "mean" in result.stdout
    assert not (tmp_path / "participant-copy" / "hidden").exists()
