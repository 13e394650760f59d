"""The docs' examples are run: every `$ dataperf ...` line, the Python blocks, the YAML file.

Which test runs a console block:

- blocks marked ``# illustration`` (they need machines the tests do not have, such as a Ray
  cluster) and blocks with ``path/to`` (they need the reader's own files) run nowhere;
- blocks that talk to a server (a platform command such as ``dataperf submit``, or ``curl``) and
  every block of the operator guide run in ``tests/server/test_docs_platform.py``, against a
  real server, in bash; so does the whole organizer guide;
- the other blocks' ``$ dataperf`` lines run here, locally.

Setup lines (``pip install``, ``make``, ``python3 -m venv``) are never run: they would change
the environment the tests run in. ``test_every_console_line_is_run_or_marked`` checks that no
other line falls through.
"""

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dataperf.registry import get_challenge

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = DOCS.parent / "README.md"
DATAPERF = str(Path(sys.executable).with_name("dataperf"))
ILLUSTRATION = "# illustration"
SETUP = ("pip install", "make ", "python3 -m venv")
# Commands that need a running server (everything the platform module adds to the CLI).
PLATFORM_COMMANDS = frozenset(
    {"serve", "worker", "admin", "login", "submit", "status", "leaderboard", "organize",
     "studio"})
# Guides whose examples run against a server: all their blocks, or only the server blocks.
SERVER_GUIDES = {"operator-guide.md": "all", "organizer-guide.md": "all",
                 "user-guide.md": "server"}


def fenced(path: Path) -> list[tuple[str, str]]:
    """Every fenced block of a Markdown file as (language, body), in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in fenced(path) if lang == language]


def prompt_lines(block: str) -> list[str]:
    """The commands of a console block: its ``$ `` lines without the prompt and comments."""
    return [line[2:].split("  #")[0].strip() for line in block.splitlines()
            if line.startswith("$ ")]


def runs_nowhere(block: str) -> bool:
    return ILLUSTRATION in block or "path/to" in block


def needs_server(block: str) -> bool:
    for line in prompt_lines(block):
        words = shlex.split(line)
        if words[0] == "curl" or (words[0] == "dataperf" and len(words) > 1
                                  and words[1] in PLATFORM_COMMANDS):
            return True
    return False


def commands(path: Path) -> list[list[str]]:
    """The ``$ dataperf`` lines run locally (see the module docstring)."""
    found = []
    for block in blocks(path, "console"):
        if runs_nowhere(block) or needs_server(block):
            continue
        for line in prompt_lines(block):
            if line.startswith("dataperf "):
                found.append(shlex.split(line))
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
    yaml_block, _ = blocks(DOCS / "organizer-guide.md", "yaml")
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


def test_every_console_line_is_run_or_marked():
    """No example silently escapes the tests: each ``$`` line runs somewhere, is setup, or sits
    in a block marked as an illustration."""
    unrun = []
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        mode = SERVER_GUIDES.get(path.name) if path.parent == DOCS else None
        for block in blocks(path, "console"):
            if runs_nowhere(block):
                continue
            on_server = mode == "all" or (mode == "server" and needs_server(block))
            if needs_server(block) and not on_server:
                unrun.append(f"{path.name}: a server block that no test runs:\n{block}")
                continue
            for line in prompt_lines(block):
                if not (line.startswith(SETUP) or on_server or line.startswith("dataperf ")):
                    unrun.append(f"{path.name}: {line}")
    assert not unrun, "examples that no test runs (mark them '# illustration'):\n" + \
        "\n".join(unrun)


def test_leaderboard_rules_are_quoted_exactly():
    """The organizer guide quotes the rules from the module that implements them."""
    from dataperf.server import leaderboard

    text = (DOCS / "organizer-guide.md").read_text(encoding="utf-8")
    section = text[text.index("### The leaderboard rules"):]
    quoted = [line[1:].strip() for line in section.splitlines() if line.startswith(">")]
    assert len(quoted) > 20
    words = " ".join(" ".join(quoted).split())
    source = " ".join((leaderboard.__doc__ or "").split())
    assert words.startswith("**What a row is ranked by")
    assert words in source, textwrap.shorten(words, 200)
    assert source.endswith(words), "the quote stops before the end of the rules"


def test_every_local_link_and_picture_in_the_docs_exists():
    """Relative links and images (e.g. the screenshots of `make screenshots`) point at files."""
    missing, checked = [], 0
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if "://" not in target:
                checked += 1
                if not (path.parent / target).exists():
                    missing.append(f"{path.name}: {target}")
    assert checked > 5
    assert not missing, missing


def test_organizer_guide_keyword_example_runs(tmp_path):
    """The keyword challenge file of the organizer guide, on real clips: the English and
    Indonesian 25-clip tasks of the bundled speech edition, renamed as the file's tasks."""
    from dataperf.challenges.declarative import create_from_file
    from dataperf.kinds.selection import SelectionChallenge

    _, yaml_block = blocks(DOCS / "organizer-guide.md", "yaml")
    spec = tmp_path / "doorbell-words.yaml"
    spec.write_text(yaml_block, encoding="utf-8")
    speech = get_challenge("speech-selection").edition()
    renamed = {"en_25": "de_20", "id_25": "fr_20"}

    def words(column: pa.ChunkedArray) -> list[str]:
        return ["other" if w == "nontarget" else w for w in column.to_pylist()]

    candidates = speech.read_table("public/candidates.parquet")
    candidates = candidates.filter(pc.is_in(candidates.column("task"),
                                            pa.array(list(renamed))))
    tasks = [renamed[t] for t in candidates.column("task").to_pylist()]
    pacsv.write_csv(pa.table({"clip": candidates.column("id"), "task": tasks,
                              "word": words(candidates.column("label"))}),
                    tmp_path / "candidates.csv")
    pool = speech.read_table("public/pool.parquet")
    pool = pool.filter(pc.is_in(pool.column("id"), candidates.column("id")))
    pq.write_table(pa.table({"clip": pool.column("id"), "vec": pool.column("embedding").cast(
        pa.list_(pa.float32()))}), tmp_path / "pool.parquet")
    test = speech.read_table("hidden/test.parquet")
    test = test.filter(pc.is_in(test.column("task"), pa.array(list(renamed))))
    pq.write_table(pa.table({"clip": test.column("id"),
                             "task": [renamed[t] for t in test.column("task").to_pylist()],
                             "vec": test.column("embedding").cast(pa.list_(pa.float32())),
                             "word": words(test.column("label"))}), tmp_path / "test.parquet")
    edition = create_from_file(spec, out_dir=tmp_path / "edition")
    challenge = SelectionChallenge.from_mapping(edition.manifest.spec, origin="guide")
    files = challenge.run_algorithm("noise-aware", edition)
    assert sorted(files) == ["de_20_train.json", "fr_20_train.json"]
    score = challenge.score(challenge.parse_submission(files, edition), edition)
    assert challenge.task_classes(edition, "de_20")[0] == "other"
    assert all(0.5 < task.value <= 1 for task in score.tasks)
