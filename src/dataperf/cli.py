"""The ``dataperf`` command: challenges, editions, algorithms and the local scorer.

Only this module turns library errors into messages for people: one line (or one list of
broken rules), never a traceback. Exit codes: 0 ok, 1 submission rejected, 2 other user error.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dataperf.challenge import PARTS, PROFILES, Challenge, Part, Profile, TestSplit
from dataperf.cli_app import app, err, out
from dataperf.editions import Edition, export_public
from dataperf.exceptions import DataPerfError, SubmissionError
from dataperf.home import editions_dir
from dataperf.kinds.redteaming import RedteamingChallenge
from dataperf.registry import challenges, get_challenge
from dataperf.submission_files import read_submission, write_submission

data_app = typer.Typer(help="Build, import, create, verify and export editions.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

ChallengeArg = Annotated[str, typer.Argument(help="Challenge name, e.g. vision-selection.")]
EditionOpt = Annotated[str, typer.Option("--edition", "-e",
                                         help="Edition name (offline, official, ...) or path.")]


@contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A Progress callback drawing one rich bar on stderr (nothing when quiet)."""
    if quiet:
        yield lambda step, done, total: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield update


@app.command("list")
def list_challenges() -> None:
    """List the challenges, their kinds and available editions."""
    table = Table("challenge", "kind", "title", "editions")
    for name, challenge in sorted(challenges().items()):
        table.add_row(name, challenge.kind, challenge.title,
                      ", ".join(challenge.edition_dirs()) or "(none: build or import one)")
    out.print(table)


@app.command()
def show(challenge: ChallengeArg, edition: EditionOpt = "offline") -> None:
    """Show a challenge's rules, tasks, frozen model, metric and data."""
    found = get_challenge(challenge)
    if found.content_warning:
        out.print(f"[bold yellow]content warning:[/bold yellow] {found.content_warning}",
                  highlight=False)
    out.print(f"[bold]{found.title}[/bold] ({found.name}, kind {found.kind}, "
              f"version {found.version})")
    out.print(found.description.strip())
    rules = Table(show_header=False)
    for key, text in found.rules().items():
        rules.add_row(key, text)
    out.print(rules)
    opened = found.edition(edition)
    manifest = opened.manifest
    out.print(f"edition [bold]{opened.name}[/bold] at {opened.path} "
              f"(content hash {opened.content_hash[:12]})")
    out.print(f"tasks: {', '.join(opened.tasks)}")
    files = Table("file", "bytes", "part")
    for name, entry in sorted(manifest.files.items()):
        files.add_row(name, f"{entry.bytes:,}", name.split("/", 1)[0])
    out.print(files)
    for source in manifest.sources:
        out.print(f"source: {source.name} ({source.licence}); {source.origin}"
                  + (f"; {source.note}" if source.note else ""))


@app.command()
def algorithms(challenge: ChallengeArg) -> None:
    """List the built-in algorithms for a challenge."""
    table = Table("algorithm", "what it does")
    for name, summary in get_challenge(challenge).algorithms().items():
        table.add_row(name, summary)
    out.print(table)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DataPerfError(f"--param takes NAME=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@app.command()
def run(
    challenge: ChallengeArg,
    algorithm: Annotated[str, typer.Option("--algorithm", "-a", help="See `dataperf "
                                           "algorithms CHALLENGE`.")],
    edition: EditionOpt = "offline",
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for the "
                       "submission files (default submissions/CHALLENGE/ALGORITHM).")] = None,
    seed: Annotated[int, typer.Option(help="random_state of the algorithm.")] = 0,
    param: Annotated[list[str] | None, typer.Option(help="Hyper-parameter NAME=VALUE "
                                                    "(repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run a built-in algorithm on the public data and write submission files."""
    found = get_challenge(challenge)
    opened = found.edition(edition)
    with progress_bar(quiet) as progress:
        files = found.run_algorithm(algorithm, opened, params=_parse_params(param or []),
                                    random_state=seed, progress=progress)
    target = write_submission(files, out_dir or Path("submissions") / found.name / algorithm)
    err.print(f"wrote {len(files)} file(s) to {target}")
    err.print(f"next: dataperf evaluate {found.name} {target}"
              + (f" --edition {edition}" if edition != "offline" else ""))


@app.command()
def evaluate(
    challenge: ChallengeArg,
    submission: Annotated[Path, typer.Argument(help="Directory of submission files (or one "
                                               "file).")],
    edition: EditionOpt = "offline",
    profile: Annotated[str, typer.Option(help="default (ours, with 95% intervals) or official "
                                         "(the original procedure).")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the score as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    private_fraction: Annotated[float | None, typer.Option(
        "--private-fraction", help="Fraction of each task's test rows held back as the private "
        "part, as on a hosted leaderboard (with --part).")] = None,
    part: Annotated[str | None, typer.Option(help="Score only the public or the private part "
                                             "of the test rows (with --private-fraction).")
                    ] = None,
    validations: Annotated[Path | None, typer.Option(help="Red-teaming: the raters' "
                           "validations (a file or directory of .jsonl, .csv or released "
                           ".json files); default: the edition's.")] = None,
) -> None:
    """Validate and score a submission with the same scorer the platform uses."""
    if profile not in PROFILES:
        raise DataPerfError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    split = None
    if (private_fraction is None) != (part is None):
        raise DataPerfError("--private-fraction and --part go together: give both (e.g. "
                            "--private-fraction 0.5 --part public) or neither")
    if part is not None and private_fraction is not None:
        if part not in PARTS:
            raise DataPerfError(f"--part must be one of {', '.join(PARTS)}, got {part!r}")
        if not 0 < private_fraction < 1:
            raise DataPerfError("--private-fraction must be strictly between 0 and 1, got "
                                f"{private_fraction:g}")
        split = TestSplit(private_fraction, cast(Part, part))
    found = get_challenge(challenge)
    if isinstance(found, RedteamingChallenge):
        if split is not None:
            raise DataPerfError(f"{found.name} is scored from validations; it has no test rows "
                                "to split (leave out --private-fraction and --part)")
        _evaluate_redteaming(found, submission, validations, edition, profile, as_json, quiet)
        return
    if validations is not None:
        raise DataPerfError(f"--validations is for red-teaming challenges; {found.name} is a "
                            f"{found.kind} challenge")
    opened = found.edition(edition)
    parsed = found.parse_submission(read_submission(submission), opened,
                                    profile=profile)
    with progress_bar(quiet or as_json) as progress:
        score = found.score(parsed, opened, profile=profile,
                            progress=progress, split=split)
    for warning in score.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    if as_json:
        sys.stdout.write(score.to_json() + "\n")
        return
    _print_score(found, score)
    if split is not None:
        out.print(f"scored on the {split.part} part of the test rows only (private fraction "
                  f"{split.private_fraction:g}, split seed {split.seed})")


def _evaluate_redteaming(found: RedteamingChallenge, submission: Path, validations: Path | None,
                         edition: str, profile: str, as_json: bool, quiet: bool) -> None:
    """Both scores of every participant and round of a red-teaming submission."""
    opened = found.edition(edition)
    parsed = found.parse_submission(read_submission(submission), opened,
                                    profile=cast(Profile, profile))
    given = None if validations is None else found.parse_validations(
        read_submission(validations), opened)
    with progress_bar(quiet or as_json) as progress:
        scored = found.score_all(parsed, opened, validations=given,
                                 profile=cast(Profile, profile), progress=progress)
    for warning in parsed.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    if as_json:
        sys.stdout.write(json.dumps([s.score.to_dict() for s in scored], indent=2,
                                    sort_keys=True) + "\n")
        return
    table = Table("participant", "round", "fooling", "rate", "creativity", "validated",
                  "pending", title=f"{found.name} - edition {opened.name} "
                  f"({opened.content_hash[:12]}) - scorer {found.scorer_version} - validations: "
                  + ("the edition's" if validations is None else validations.name))
    for item in scored:
        r = item.result
        table.add_row(r.participant or "(none)", r.round or "",
                      f"{r.fooling.value:.0f} [{r.fooling.low:.0f}, {r.fooling.high:.0f}]",
                      f"{r.rate.value:.2f} [{r.rate.low:.2f}, {r.rate.high:.2f}]",
                      f"{r.creativity.value:.1f} [{r.creativity.low:.1f}, "
                      f"{r.creativity.high:.1f}]",
                      f"{r.counts['validated_prompts']}/{r.counts['prompts']}",
                      str(r.counts["pending_attacks"]))
    out.print(table)
    out.print("fooling: credited prompts validated as safe with an unsafe image; rate: fooling "
              "prompts / validated prompts; creativity: 0-100; validated: prompts with every "
              "validation; pending: attacks still waiting for validations; [95% intervals]; "
              f"`dataperf show {found.name}` gives the rules")


@app.command()
def compare(
    challenge: ChallengeArg,
    edition: EditionOpt = "offline",
    algorithm: Annotated[list[str] | None, typer.Option("--algorithm", "-a", help="Only these "
                         "(repeatable); default all.")] = None,
    seed: Annotated[int, typer.Option(help="random_state of every algorithm.")] = 0,
    markdown: Annotated[Path | None, typer.Option(help="Also write the results table to this "
                        "markdown file.")] = None,
) -> None:
    """Run and score every built-in algorithm: the results table of a challenge."""
    from dataperf.reports import compare_algorithms, results_markdown

    found = get_challenge(challenge)
    opened = found.edition(edition)
    if isinstance(found, RedteamingChallenge):
        _report_redteaming(found, opened, edition, algorithm, markdown)
        return
    with progress_bar() as progress:
        results = compare_algorithms(found, opened, algorithm, random_state=seed,
                                     progress=progress)
    for result in results:
        _print_score(found, result.score, title=f"{result.algorithm} ({result.seconds:.1f} s)")
    if markdown is not None:
        words = ["dataperf compare", found.name]
        words += [f"--edition {edition}"] if edition != "offline" else []
        words += [f"--algorithm {a}" for a in algorithm or []]
        words += [f"--seed {seed}"] if seed else []
        words += [f"--markdown {markdown.as_posix()}"]
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(results_markdown(found, opened, results, command=" ".join(words)),
                            encoding="utf-8")
        err.print(f"wrote {markdown}")


def _report_redteaming(found: RedteamingChallenge, opened: Edition, edition: str,
                       algorithm: list[str] | None, markdown: Path | None) -> None:
    """The rounds of a red-teaming edition replayed: printed, and written to ``markdown``."""
    from rich.markdown import Markdown

    from dataperf.kinds.redteaming_report import rounds_markdown

    if algorithm:
        raise DataPerfError(f"{found.name} has no algorithms to compare; `dataperf compare "
                            f"{found.name}` replays its released rounds")
    words = ["dataperf compare", found.name]
    words += [f"--edition {edition}"] if edition != "offline" else []
    words += [f"--markdown {markdown.as_posix()}"] if markdown is not None else []
    with progress_bar() as progress:
        text = rounds_markdown(found, opened, command=" ".join(words), progress=progress)
    if markdown is None:
        out.print(Markdown(text))
        return
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text, encoding="utf-8")
    err.print(f"wrote {markdown}")


def _print_score(found: Challenge, score: Any, title: str | None = None) -> None:
    from dataperf.reports import metric_scale

    columns = found.report_columns()
    title = title or (f"{found.name} - edition {score.edition} ({score.edition_hash[:12]}) - "
                      f"profile {score.profile} - scorer {score.scorer_version}")
    table = Table("task", score.metric, "95% interval", *(header for _, header in columns),
                  title=title)
    digits = 2 if metric_scale(found) >= 100 else 3  # percentages or fractions
    for task in [*score.tasks, score.aggregate]:
        interval = "" if task.ci_low is None else \
            f"[{task.ci_low:.{digits}f}, {task.ci_high:.{digits}f}]"
        cells = [_detail(task.details.get(key, "")) for key, _ in columns]
        table.add_row(task.task, f"{task.value:.{digits}f}", interval, *cells,
                      style="bold" if task is score.aggregate else None)
    out.print(table)


def _detail(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@data_app.command("build")
def data_build(
    challenge: ChallengeArg,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the "
                       "edition (default $DATAPERF_HOME/editions/CHALLENGE/offline).")] = None,
    limit: Annotated[int | None, typer.Option(help="Build a small subset: pool size (for quick "
                     "checks).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    source: Annotated[Path | None, typer.Option(help="Where the builder reads its sources "
                      "(default: where the packages that ship them put them).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Build the offline edition of a challenge from its real public sources."""
    found = get_challenge(challenge)
    if not found.builder:
        raise DataPerfError(f"{found.name} has no offline builder")
    build = importlib.import_module(found.builder).build
    options: dict[str, Any] = {"limit": limit} if limit is not None else {}
    if source is not None:
        if "source" not in inspect.signature(build).parameters:
            raise DataPerfError(f"the builder of {found.name} reads its sources from packages; "
                                "it takes no --source")
        options["source"] = source
    target = out_dir or editions_dir() / found.name / "offline"
    with progress_bar() as progress:
        edition = build(target, seed=seed, overwrite=overwrite, progress=progress, **options)
    out.print(f"built {found.name} edition {edition.name} at {edition.path} "
              f"(content hash {edition.content_hash[:12]})")


@data_app.command("import")
def data_import(
    challenge: ChallengeArg,
    source: Annotated[Path, typer.Argument(help="Directory with the original DataPerf files.")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the "
                       "edition (default $DATAPERF_HOME/editions/CHALLENGE/official).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Import the original DataPerf files of a challenge as its official edition."""
    found = get_challenge(challenge)
    if not found.importer:
        raise DataPerfError(f"{found.name} has no importer for original files")
    importer = importlib.import_module(found.importer).import_official
    with progress_bar() as progress:
        edition = importer(source, out_dir or editions_dir() / found.name / "official",
                           overwrite=overwrite, progress=progress)
    out.print(f"imported {found.name} edition {edition.name} at {edition.path} with tasks "
              f"{', '.join(edition.tasks)}")


@data_app.command("create")
def data_create(
    spec: Annotated[Path, typer.Argument(help="The organizer's challenge file (YAML).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Create a new challenge from your own data and a small declarative file."""
    from dataperf.challenges.declarative import create_from_file

    edition = create_from_file(spec, out_dir=out_dir, overwrite=overwrite)
    out.print(f"created challenge {edition.challenge} (edition {edition.name}, tasks "
              f"{', '.join(edition.tasks)}) at {edition.path}")


@data_app.command("verify")
def data_verify(challenge: ChallengeArg, edition: EditionOpt = "offline") -> None:
    """Check every file of an edition against the sha256 in its manifest."""
    opened = get_challenge(challenge).edition(edition, verify=True)
    part = "public part only" if not opened.has_hidden else "public and hidden parts"
    out.print(f"ok: {len(opened.manifest.files)} files of {opened.challenge}/{opened.name} "
              f"match their sha256 ({part}); content hash {opened.content_hash}")


@data_app.command("export")
def data_export(
    challenge: ChallengeArg,
    destination: Annotated[Path, typer.Argument(help="New directory for the public copy.")],
    edition: EditionOpt = "offline",
) -> None:
    """Export the public part of an edition (what participants get; no hidden data)."""
    copy = export_public(get_challenge(challenge).edition(edition), destination)
    out.print(f"exported {len(copy.manifest.files)} public files to {copy.path}")


def _print_error(message: str) -> None:
    err.print("error:", style="bold red", end=" ")
    err.print(message, markup=False, highlight=False, soft_wrap=True)  # paths stay whole


def _click_exceptions() -> tuple[type[Exception], ...]:
    """Usage errors: newer typer raises its own bundled click's; older ones, click's."""
    found: list[type[Exception]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with suppress(ModuleNotFoundError):
            found.append(importlib.import_module(module).ClickException)
    return tuple(found)


def main() -> None:
    try:
        app(standalone_mode=False)
    except DataPerfError as error:
        _print_error(str(error))
        raise SystemExit(1 if isinstance(error, SubmissionError) else 2) from None
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        raise SystemExit(130) from None
    except OSError as error:
        _print_error(f"{error.strerror or error}: {error.filename or ''}")
        raise SystemExit(2) from None
    except Exception as error:  # click usage errors
        if isinstance(error, _click_exceptions()):
            error.show()  # type: ignore[attr-defined]
            raise SystemExit(error.exit_code) from None  # type: ignore[attr-defined]
        raise

# The platform commands (serve, worker, login, submit, ..., and the red-teaming studio's) live
# in their own modules, which add them to the same app (after these, in the help's order).
from dataperf import cli_server  # noqa: E402, F401  (serve and worker first)

# isort: split
from dataperf import cli_platform, cli_studio  # noqa: E402, F401
