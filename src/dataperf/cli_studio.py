"""``dataperf studio``: red-team a hosted challenge from the command line, as its web studio
does: read the content warning and accept it, send prompts and save the images they make
(blurred unless revealed), submit images as attacks with their annotations, and list one's
attempts and attacks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from dataperf.cli_app import app, err, out
from dataperf.cli_platform import ServerOpt
from dataperf.client import Client, ServerError, poll_until
from dataperf.exceptions import DataPerfError

studio_app = typer.Typer(help="Red-team a hosted challenge: accept its content warning, send "
                         "prompts, save their images, submit attacks (participants).",
                         no_args_is_help=True)
app.add_typer(studio_app, name="studio")

#: A generation's states once its images are made or it failed.
MADE = {"done", "failed_participant", "failed_platform", "cancelled"}

ChallengeArg = Annotated[str, typer.Argument(help="Hosted red-teaming challenge name.")]


class StudioClient(Client):
    """The studio's part of the API."""

    def __enter__(self) -> StudioClient:
        return self

    def studio(self, challenge: str) -> Any:
        return self.request("GET", f"/challenges/{challenge}/studio")

    def consent(self, challenge: str) -> Any:
        return self.request("POST", f"/challenges/{challenge}/consent")

    def prompt(self, challenge: str, text: str) -> Any:
        try:
            return self.request("POST", f"/challenges/{challenge}/generations",
                                json={"prompt": text})
        except ServerError as error:
            if error.code != "consent-needed":
                raise
            raise ServerError(error.status, error.code, "accept the content warning of "
                              f"{challenge} first: `dataperf studio consent {challenge}` shows "
                              "it and asks") from None

    def upload(self, challenge: str, text: str, model: str, image: bytes, filename: str
               ) -> Any:
        return self.request("POST", f"/challenges/{challenge}/uploads",
                            data={"prompt": text, "model": model},
                            files=[("image", (filename, image, "application/octet-stream"))])

    def generation(self, generation_id: int) -> Any:
        return self.request("GET", f"/generations/{generation_id}")

    def attempts(self, challenge: str) -> Any:
        return self.request("GET", f"/challenges/{challenge}/generations")

    def attack(self, generation_id: int, answers: dict[str, Any]) -> Any:
        return self.request("POST", f"/generations/{generation_id}/attacks", json=answers)

    def attacks(self, challenge: str) -> Any:
        return self.request("GET", f"/challenges/{challenge}/attacks")

    def image(self, generation_id: int, index: int, *, reveal: bool = False) -> bytes:
        """An image's PNG: blurred, or the clear one with ``reveal``."""
        return self.download(f"/generations/{generation_id}/images/{index}",
                             {"reveal": "true"} if reveal else None)

    def wait_for_images(self, generation_id: int, *, poll: float = 0.5, timeout: float = 600.0,
                        on_update: Callable[[Any], None] | None = None) -> Any:
        """Poll until the prompt's images are made (or making them failed)."""
        return poll_until(lambda: self.generation(generation_id), MADE, poll=poll,
                          timeout=timeout, on_update=on_update,
                          late=lambda found: f"the images of generation {generation_id} are "
                          f"still {found['state']} after {timeout:.0f} s; see them later with "
                          f"`dataperf studio attempts {found['challenge']}`")


def _when(text: str) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _plain(text: str) -> Text:
    """A participant's text in a table, never read as markup."""
    return Text(text)


def _state(found: dict[str, Any]) -> str:
    state = str(found["state"])
    if state == "queued" and found.get("position") is not None:
        wait = found.get("wait_seconds")
        state += f", {found['position']} ahead" + (f", about {wait:.0f} s" if wait else "")
    return state


def _print_images(found: dict[str, Any]) -> None:
    images = found["images"]
    table = Table("index", "image", "submitted",
                  title=f"generation {found['id']}: {len(images)} image(s) of "
                  f"{found['challenge']} round {found['round']}")
    for image in images:
        shown = f"blocked: {image['blocked']}" if image["url"] is None else "made"
        if image["url"] is not None and image["test_generator"]:
            shown += " (test generator: noise, not a picture)"
        table.add_row(str(image["index"]), _plain(shown), "yes" if image["submitted"] else "")
    out.print(table)


def _save(client: StudioClient, found: dict[str, Any], folder: Path, reveal: bool) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    saved = 0
    for image in found["images"]:
        if image["url"] is None:  # blocked: no picture
            continue
        data = client.image(found["id"], image["index"], reveal=reveal)
        (folder / f"{found['id']}-{image['index']}.png").write_bytes(data)
        saved += 1
    return saved


@studio_app.command("show")
def studio_show(challenge: ChallengeArg, server: ServerOpt = None) -> None:
    """Show a challenge's content warning, your consent and the annotations of attacks."""
    with StudioClient(server) as client:
        found = client.studio(challenge)
    out.print(f"content warning: {found['content_warning']}", markup=False, highlight=False)
    consent = "accepted" if found["consented"] else \
        f"not accepted yet (`dataperf studio consent {challenge}`)"
    out.print(f"{found['challenge']} round {found['round']}: {found['images_per_prompt']} "
              f"image(s) per prompt, at most {found['prompts_per_minute']} prompts a minute; "
              f"content warning {consent}", markup=False, highlight=False)
    if found["test_generator"]:
        out.print("the images come from a test generator (noise, not pictures)")
    if found.get("takes_uploads"):
        out.print(f"this round takes images you made elsewhere: `dataperf studio upload "
                  f"{challenge} \"PROMPT\" IMAGE --model NAME`", markup=False, highlight=False)
    if found["screener"]:
        out.print(f"prompts are screened by {found['screener']} (a flag for the raters, never "
                  "a refusal)", markup=False, highlight=False)
    table = Table("question", "option", "values", title="annotations of an attack")
    options = {"attack_modes": "--attack-mode", "harm_types": "--harm-type (at least one)",
               "targets": "--target"}
    for question, values in found["vocabularies"].items():
        table.add_row(question, options.get(question, ""), _plain(", ".join(values)))
    out.print(table)


@studio_app.command("consent")
def studio_consent(
    challenge: ChallengeArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accept without being asked (you "
                                      "have read the warning).")] = False,
    server: ServerOpt = None,
) -> None:
    """Read a challenge's content warning and accept it (needed before any prompt)."""
    with StudioClient(server) as client:
        found = client.studio(challenge)
        if found["consented"]:
            out.print(f"you accepted the content warning of {challenge} already")
            return
        err.print(f"content warning: {found['content_warning']}", markup=False,
                  highlight=False)
        if not yes and not typer.confirm("Do you accept it?", err=True):
            raise DataPerfError("the content warning was not accepted: no prompts can be sent")
        client.consent(challenge)
    out.print(f"accepted the content warning of {challenge}; send prompts with `dataperf "
              f"studio prompt {challenge} \"...\"`")


@studio_app.command("upload")
def studio_upload(
    challenge: ChallengeArg,
    text: Annotated[str, typer.Argument(help="The prompt you gave the model.")],
    image: Annotated[Path, typer.Argument(help="The image it made (PNG, JPEG or WebP).",
                                          exists=True, dir_okay=False, readable=True)],
    model: Annotated[str, typer.Option(help="The model's name (and version).")],
    server: ServerOpt = None,
) -> None:
    """Upload an image you made with a model elsewhere, in a round that takes uploads."""
    with StudioClient(server) as client:
        found = client.upload(challenge, text, model, image.read_bytes(), image.name)
    err.print(f"uploaded as generation {found['id']}")
    _print_images(found)
    out.print(f"submit it with `dataperf studio attack {found['id']} 0 --harm-type ...`",
              markup=False, highlight=False)


@studio_app.command("prompt")
def studio_prompt(
    challenge: ChallengeArg,
    text: Annotated[str, typer.Argument(help="The prompt.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the images.")
                    ] = True,
    save: Annotated[Path | None, typer.Option(help="Save the images in this folder as "
                                              "<generation>-<index>.png.")] = None,
    reveal: Annotated[bool, typer.Option(help="Save the clear images, not the blurred ones.")
                      ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the images.")] = 600.0,
    server: ServerOpt = None,
) -> None:
    """Send a prompt, wait for its images and show them (the same ones when sent again)."""
    with StudioClient(server) as client:
        found = client.prompt(challenge, text)
        if found["state"] in MADE:
            err.print(f"generation {found['id']}: made before, the same images")
        else:
            err.print(f"sent as generation {found['id']}: {_state(found)}")
        if wait and found["state"] not in MADE:
            seen = [_state(found)]

            def update(state: dict[str, Any]) -> None:
                if state["state"] != "queued" and state["state"] not in seen:
                    seen.append(state["state"])
                    err.print(f"  {state['state']}")

            found = client.wait_for_images(found["id"], timeout=timeout, on_update=update)
        if found["state"] != "done":
            if found["state"] in MADE:
                raise DataPerfError(f"the images of generation {found['id']} could not be made "
                                    f"({found['state']}): {found['message'] or 'no reason'}; "
                                    "send the prompt again to retry")
            if save is not None:
                err.print("the images are not made yet: nothing saved (send the prompt again "
                          "to see them, without --no-wait)")
            return
        _print_images(found)
        if save is not None:
            saved = _save(client, found, save, reveal)
            err.print(f"saved {saved} {'clear' if reveal else 'blurred'} image(s) in {save}")


@studio_app.command("attack")
def studio_attack(
    generation: Annotated[int, typer.Argument(help="The generation (its prompt's images).")],
    index: Annotated[int, typer.Argument(help="The image's index in it.")],
    harm_type: Annotated[list[str], typer.Option(help="A harm the image shows (repeatable; "
                                                 "`dataperf studio show` lists them).")],
    attack_mode: Annotated[list[str] | None, typer.Option(
        help="How the prompt fools the model (repeatable).")] = None,
    target: Annotated[list[str] | None, typer.Option(
        help="Who the image harms (repeatable).")] = None,
    rewritten: Annotated[str, typer.Option(help="The prompt rewritten to state the harm the "
                                           "image shows.")] = "",
    harm_type_other: Annotated[str, typer.Option(help="The harm, for 'other'.")] = "",
    attack_mode_other: Annotated[str, typer.Option(help="The attack mode, for 'other'.")
                                 ] = "",
    target_other: Annotated[str, typer.Option(help="The target, for 'other'.")] = "",
    server: ServerOpt = None,
) -> None:
    """Submit one of your prompt's images as an attack, with its annotations."""
    answers = {"image": index, "harm_types": harm_type, "attack_modes": attack_mode or [],
               "targets": target or [], "rewritten_prompt": rewritten,
               "harm_type_other": harm_type_other, "attack_mode_other": attack_mode_other,
               "target_other": target_other}
    with StudioClient(server) as client:
        found = client.attack(generation, answers)
    notes = found["annotations"]
    out.print(f"submitted attack {found['id']}: image {found['image']} of generation "
              f"{found['generation']} ({found['challenge']} round {found['round']}), "
              f"{found['state']}; harm types {', '.join(notes['harm_types'])}",
              markup=False, highlight=False)


@studio_app.command("attempts")
def studio_attempts(challenge: ChallengeArg, server: ServerOpt = None) -> None:
    """List your prompts in the current round, newest first."""
    with StudioClient(server) as client:
        found = client.attempts(challenge)
    table = Table("generation", "state", "images", "blocked", "submitted", "prompt", "sent",
                  title=f"your prompts in {challenge}")
    for row in found:
        images = row["images"]
        table.add_row(str(row["id"]), _state(row), str(len(images)),
                      str(sum(image["url"] is None for image in images)),
                      ", ".join(str(image["index"]) for image in images if image["submitted"]),
                      _plain(row["prompt"]), _when(row["created_at"]))
    out.print(table)


@studio_app.command("attacks")
def studio_attacks(challenge: ChallengeArg, server: ServerOpt = None) -> None:
    """List your submitted attacks in the current round, newest first."""
    with StudioClient(server) as client:
        found = client.attacks(challenge)
    table = Table("attack", "generation", "image", "state", "harm types", "prompt", "submitted",
                  title=f"your attacks in {challenge}")
    for row in found:
        table.add_row(str(row["id"]), str(row["generation"]), str(row["image"]), row["state"],
                      ", ".join(row["annotations"].get("harm_types", [])), _plain(row["prompt"]),
                      _when(row["created_at"]))
    out.print(table)
