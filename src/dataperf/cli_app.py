"""The ``dataperf`` Typer app and its two consoles, shared by every command module (``cli.py``,
``cli_platform.py``, ``cli_studio.py``), so none of them imports another to add its commands."""

from __future__ import annotations

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
