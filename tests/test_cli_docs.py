"""Every CLI command has help text and appears in the guides."""

from pathlib import Path

import typer.main

from dataperf.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def command_paths() -> dict[str, str]:
    group = typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        children = getattr(command, "commands", None)
        if children:
            for child_name, child in children.items():
                found[f"{name} {child_name}"] = child.help or ""
        else:
            found[name] = command.help or ""
    return found


def test_every_command_has_help():
    commands = command_paths()
    assert {"list", "show", "run", "evaluate", "compare", "data build", "data import"} <= set(
        commands)
    missing = [name for name, text in commands.items() if not text.strip()]
    assert not missing, f"commands without help: {missing}"


def test_every_command_is_documented():
    guides = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    guides += (DOCS.parent / "README.md").read_text(encoding="utf-8") + (
        DOCS.parent / "Makefile").read_text(encoding="utf-8")
    undocumented = [name for name in command_paths() if f"dataperf {name}" not in guides]
    assert not undocumented, f"commands missing from the docs: {undocumented}"
