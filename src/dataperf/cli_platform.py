"""The ``dataperf`` commands for using a hosted platform (``login``, ``download``, ``submit``,
``status``, ``leaderboard``) and organizing on it (``organize``); running one is
``cli_server.py``'s."""

from __future__ import annotations

import io
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dataperf.cli_app import app, err, out, read_password
from dataperf.client import Client, save_credentials
from dataperf.editions import Edition
from dataperf.exceptions import DataPerfError
from dataperf.home import editions_dir
from dataperf.registry import challenges
from dataperf.submission_files import read_submission

organize_app = typer.Typer(help="Host challenges, open rounds, set deadlines, quotas and "
                           "the public/private split (organizers).", no_args_is_help=True)
app.add_typer(organize_app, name="organize")

ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (default: the one "
                                               "you logged in to, or DATAPERF_SERVER).")]


# Using a server -----------------------------------------------------------------------------

@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True, help="Your account's email.")],
    server: ServerOpt = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Log in to a server and save an API token for the other commands."""
    with Client(server, token="") as client:
        answer = client.login(email, read_password(password_stdin))
        path = save_credentials(client.server, answer["token"])
    out.print(f"logged in to {client.server} as {answer['user']['name']} "
              f"({answer['user']['role']}); token saved in {path}")


def _same_public_data(edition: Edition, hosted: dict[str, Any]) -> bool:
    mine = {n: f.sha256 for n, f in edition.manifest.files.items() if n.startswith("public/")}
    return bool(mine) and mine == hosted["public_files"]


def _local_check(client: Client, challenge: str, files: dict[str, bytes]) -> str:
    """Validate with the local scorer when the same public data is installed here."""
    hosted = client.challenge(challenge)
    local = challenges().get(hosted["challenge"])
    for path in (local.edition_dirs().values() if local else ()):
        edition = Edition.open(path, verify=False)
        if _same_public_data(edition, hosted):
            local.parse_leaderboard_submission(files, edition)  # type: ignore[union-attr]
            return f"checked locally against {edition.name}"
    return ("not checked locally (its public data is not installed here: `dataperf download "
            f"{challenge}`); the server checks it")


@app.command()
def download(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    server: ServerOpt = None,
) -> None:
    """Install a hosted challenge's public data under DATAPERF_HOME, to run algorithms on it."""
    with Client(server) as client:
        hosted = client.challenge(challenge)
        local = challenges().get(hosted["challenge"])
        for path in (local.edition_dirs().values() if local else ()):
            present = Edition.open(path, verify=False)
            if _same_public_data(present, hosted):
                out.print(f"the public data of {challenge} is already here: edition "
                          f"{present.name} of {present.challenge} at {present.path}")
                return
        data = client.download_public(challenge)
    edition = install_public_archive(data, hosted["challenge"])
    if not _same_public_data(edition, hosted):
        raise DataPerfError(f"the downloaded data of {challenge} does not match what the "
                            "server announces; try again")
    out.print(f"installed the public data of {challenge} as edition {edition.name} of "
              f"{edition.challenge} at {edition.path}; try `dataperf show {edition.challenge} "
              f"-e {edition.name}`")


def install_public_archive(data: bytes, challenge: str) -> Edition:
    """Unpack a public-data archive into ``$DATAPERF_HOME/editions/<challenge>/<edition>``."""
    root = editions_dir() / challenge
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as scratch:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(scratch, filter="data")
        except (tarfile.TarError, EOFError) as error:
            raise DataPerfError(f"the downloaded archive is broken: {error}") from None
        folders = [p.parent for p in Path(scratch).glob("*/manifest.json")]
        if len(folders) != 1:
            raise DataPerfError("the downloaded archive holds no edition")
        edition = Edition.open(folders[0])
        if edition.challenge != challenge:
            raise DataPerfError(f"the archive holds an edition of {edition.challenge!r}")
        target = root / edition.name
        if target.exists():
            installed = Edition.open(target, verify=False)
            if installed.manifest.files != edition.manifest.files:
                raise DataPerfError(f"{target} holds other data; move it away and download "
                                    "again")
            return installed
        folders[0].rename(target)
    return Edition.open(target)


def _print_submission(found: dict[str, Any]) -> None:
    state = found["state"]
    line = f"submission {found['id']} ({found['challenge']}, round {found['round']}): {state}"
    if state == "queued" and found.get("position") is not None:
        wait = found.get("wait_seconds")
        line += f", {found['position']} ahead" + (f", about {wait:.0f} s" if wait else "")
    if state == "running" and found.get("progress"):
        p = found["progress"]
        line += f", {p['step']} {p['done']}/{p['total']}"
    out.print(line, markup=False, highlight=False)
    if found.get("message") and state != "scored":
        out.print(found["message"], markup=False, highlight=False)
    for part, scores in found.get("scores", {}).items():
        table = Table("task", "score", "95% interval", title=f"{part} test data")
        for task in [*scores["tasks"], {"task": "aggregate", **scores["aggregate"]}]:
            interval = "" if task["ci_low"] is None else \
                f"[{task['ci_low']:.2f}, {task['ci_high']:.2f}]"
            table.add_row(task["task"], f"{task['value']:.2f}", interval)
        out.print(table)


@app.command()
def submit(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    path: Annotated[Path, typer.Argument(help="Directory of submission files (or one file).")],
    label: Annotated[str, typer.Option(help="A note to find it again.")] = "",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the score.")] = True,
    server: ServerOpt = None,
) -> None:
    """Validate a submission locally, upload it, and (by default) wait for its score."""
    files = read_submission(path)
    with Client(server) as client:
        note = _local_check(client, challenge, files)
        found = client.submit(challenge, files, label)
        err.print(f"uploaded {len(files)} file(s) as submission {found['id']} ({note})")
        if wait:
            last: list[str] = []

            def update(state: dict[str, Any]) -> None:
                if state["state"] not in last:
                    last.append(state["state"])
                    err.print(f"  {state['state']}")

            found = client.wait(found["id"], on_update=update)
    _print_submission(found)
    if found["state"] == "failed_participant":
        raise typer.Exit(1)
    if found["state"] == "failed_platform":
        raise typer.Exit(2)


@app.command()
def status(
    submission: Annotated[int | None, typer.Argument(help="Submission ID (omit: list).")] = None,
    challenge: Annotated[str | None, typer.Option(help="Only this challenge.")] = None,
    save: Annotated[Path | None, typer.Option(help="Save the submission's files in this "
                                              "folder (a studio scoring's too).")] = None,
    server: ServerOpt = None,
) -> None:
    """Show a submission's state and scores, or list your team's submissions."""
    with Client(server) as client:
        if submission is not None:
            found = client.submission(submission)
            _print_submission(found)
            if save is not None:
                _save_files(client, found, save)
            return
        if save is not None:
            raise DataPerfError("--save needs a submission ID: `dataperf status ID --save DIR`")
        table = Table("id", "challenge", "round", "state", "score", "label", "submitted")
        for item in client.submissions(challenge):
            part = next(iter(item["scores"].values()), None)
            table.add_row(str(item["id"]), item["challenge"], str(item["round"]), item["state"],
                          f"{part['aggregate']['value']:.2f}" if part else "", item["label"],
                          _when(item["created_at"]))
        out.print(table)


def _save_files(client: Client, found: dict[str, Any], folder: Path) -> None:
    """Write each listed file under ``folder`` (names as the server lists them, folders
    included; a name that would leave the folder is refused)."""
    root = folder.resolve()
    for item in found.get("files", []):
        target = (root / item["name"]).resolve()
        if not target.is_relative_to(root) or target == root:
            raise DataPerfError(f"the server listed a file named {item['name']!r}, which "
                                f"would be written outside {folder}: nothing more saved")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.submission_file(found["id"], item["name"]))
    err.print(f"saved {len(found.get('files', []))} file(s) in {folder}")


def _when(text: str) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


@app.command()
def leaderboard(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    round: Annotated[int | None, typer.Option(help="Round number (default: newest).")] = None,
    part: Annotated[str | None, typer.Option(help="all, public or private.")] = None,
    task: Annotated[str, typer.Option(help="Rank by one task instead of the aggregate.")
                    ] = "aggregate",
    weights: Annotated[str | None, typer.Option(help="Task weights, e.g. shirt=2,trouser=1.")
                       ] = None,
    server: ServerOpt = None,
) -> None:
    """Show a challenge's leaderboard: ranks (ties shared), scores and 95% intervals."""
    with Client(server) as client:
        board = client.leaderboard(challenge, round=round, part=part, view=task,
                                   weights=weights)
    table = Table("rank", "team", "score", "95% interval", "submission", "submitted",
                  title=f"{board['challenge']} round {board['round']} ({board['part']} test "
                  f"data, {board['view']})", caption=board["tie_rule"])
    for row in board["rows"]:
        score = row["score"]
        rank = "baseline" if row["is_baseline"] else f"{row['rank']}{'=' if row['tied'] else ''}"
        interval = "" if score["ci_low"] is None else \
            f"[{score['ci_low']:.2f}, {score['ci_high']:.2f}]"
        team = f"{row['team']} ({row['label']})" if row["is_baseline"] else row["team"]
        table.add_row(rank, team, f"{score['value']:.2f}", interval, str(row["submission_id"]),
                      _when(row["created_at"]))
    out.print(table)


# Organizing ---------------------------------------------------------------------------------

def _round_settings(deadline: str | None, daily_quota: int | None, round_quota: int | None,
                    private_fraction: float | None, final_count: int | None,
                    name: str | None = None) -> dict[str, Any]:
    values = {"deadline": deadline, "daily_quota": daily_quota, "round_quota": round_quota,
              "private_fraction": private_fraction, "final_count": final_count, "name": name}
    return {k: v for k, v in values.items() if v is not None}


Deadline = Annotated[str | None, typer.Option(help="ISO time with zone, e.g. "
                                              "2027-01-31T23:59:00Z.")]
DailyQuota = Annotated[int | None, typer.Option(help="Submissions per team per 24 hours.")]
RoundQuota = Annotated[int | None, typer.Option(help="Submissions per team per round.")]
PrivateFraction = Annotated[float | None, typer.Option(
    help="Share of hidden test rows kept private until the deadline (0 to <1).")]
FinalCount = Annotated[int | None, typer.Option(help="Final submissions a team may pick "
                                                "(0: its best counts).")]


@organize_app.command("create")
def organize_create(
    source: Annotated[str, typer.Argument(help="An edition folder (uploaded), or a registered "
                                          "challenge name (hosted on its bundled edition).")],
    edition: Annotated[str, typer.Option(help="Edition name, for a challenge name.")
                       ] = "offline",
    name: Annotated[str | None, typer.Option(help="Hosted name in URLs.")] = None,
    deadline: Deadline = None, daily_quota: DailyQuota = None, round_quota: RoundQuota = None,
    private_fraction: PrivateFraction = None, final_count: FinalCount = None,
    server: ServerOpt = None,
) -> None:
    """Host a challenge: from an edition folder (e.g. made by `dataperf data create`) or a
    registered challenge's edition; opens its first round."""
    settings = _round_settings(deadline, daily_quota, round_quota, private_fraction,
                               final_count)
    with Client(server) as client:
        folder = Path(source)
        if folder.is_dir():
            uploaded = client.upload_edition(folder)
            err.print(f"uploaded edition {uploaded['name']} of {uploaded['challenge']} "
                      f"(content hash {uploaded['content_hash']})")
            challenge, edition = uploaded["challenge"], uploaded["name"]
        else:
            challenge = source
        hosted = client.host(challenge, edition, name=name, round_settings=settings)
    out.print(f"hosted {hosted['name']} ({hosted['title']}): tasks {', '.join(hosted['tasks'])};"
              f" round {hosted['rounds'][-1]['number']} open")


@organize_app.command("open-round")
def organize_open_round(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    name: Annotated[str | None, typer.Option(help="Round name.")] = None,
    deadline: Deadline = None, daily_quota: DailyQuota = None, round_quota: RoundQuota = None,
    private_fraction: PrivateFraction = None, final_count: FinalCount = None,
    server: ServerOpt = None,
) -> None:
    """Close the current round and open the next one."""
    settings = _round_settings(deadline, daily_quota, round_quota, private_fraction,
                               final_count, name)
    with Client(server) as client:
        round_ = client.open_round(challenge, settings)
    out.print(f"opened round {round_['number']} of {challenge}")


@organize_app.command("set-round")
def organize_set_round(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    number: Annotated[int, typer.Argument(help="Round number.")],
    deadline: Deadline = None, daily_quota: DailyQuota = None, round_quota: RoundQuota = None,
    private_fraction: PrivateFraction = None, final_count: FinalCount = None,
    server: ServerOpt = None,
) -> None:
    """Change a round's deadline, quotas, public/private split or final submissions."""
    settings = _round_settings(deadline, daily_quota, round_quota, private_fraction,
                               final_count)
    if not settings:
        raise DataPerfError("nothing to change: give at least one option")
    with Client(server) as client:
        round_ = client.edit_round(challenge, number, settings)
    out.print(f"round {round_['number']} of {challenge}: deadline {round_['deadline']}, "
              f"{round_['daily_quota']} per day, private fraction {round_['private_fraction']}")


@organize_app.command("snapshot")
def organize_snapshot(
    challenge: Annotated[str, typer.Argument(help="Hosted challenge name.")],
    name: Annotated[str, typer.Argument(help="Snapshot name.")],
    server: ServerOpt = None,
) -> None:
    """Freeze the current leaderboard under a name."""
    with Client(server) as client:
        snap = client.snapshot(challenge, name)
    out.print(f"froze {len(snap['leaderboard']['rows'])} rows of {challenge} as {name!r}")
