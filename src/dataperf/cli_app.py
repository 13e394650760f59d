"""The ``dataperf`` Typer app, its two consoles and its password prompt, shared by every command
module (``cli.py``, ``cli_server.py``, ``cli_platform.py``, ``cli_studio.py``), so none of them
imports another to add its commands."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.console import Console

from dataperf import __version__

app = typer.Typer(help="DataPerf: benchmarks for data. The model is frozen; improve the data.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"dataperf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version,
                                                is_eager=True, help="Show the version.")] = False
          ) -> None:
    """DataPerf: benchmarks for data."""


def read_password(stdin: bool, prompt: str = "Password") -> str:
    """The password typed at a hidden prompt, or the first line of piped input (as with
    ``--password-stdin``: no terminal to hide it on, and no warning about that)."""
    if stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"{prompt}: ")
