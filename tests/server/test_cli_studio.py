"""`dataperf studio` against a real server (SQLite and PostgreSQL) with the `tiny` generator, as
a participant runs it: read the content warning and accept it, send a prompt, save its images
(blurred, then clear), submit one as an attack, find it listed; refusals are the platform's
messages in plain words, with a non-zero exit."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from official_layout import CliResult, dataperf
from platform_harness import (
    BACKENDS,
    PASSWORD,
    LiveServer,
    database_url,
    fast_settings,
    live_server,
)

CHALLENGE = "adversarial-nibbler"
NAME = "cli-nibbler"
OTHER_KIND = "vision-selection"  # hosted at start: not a red-teaming challenge
PROMPT = "a knight in a red field"


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp(f"cli-studio-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url)) as server:
        server.user("organizer@cli-studio.example.org", "organizer")
        server.host(CHALLENGE, NAME, owner_email="organizer@cli-studio.example.org")
        yield server


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result
    return result


def refused(result: CliResult) -> CliResult:
    assert result.returncode == 2, result
    assert result.err.startswith("error: "), result
    assert "Traceback" not in result.stderr, result
    return result


def participant(live: LiveServer, home: Path) -> str:
    """A new participant logged in with `dataperf login` in ``home``; their API token."""
    email = f"p{time.monotonic_ns()}@cli-studio.example.org"
    token = live.user(email)
    ok(dataperf("login", "--server", live.url, "--email", email, "--password-stdin",
                home=home, input=PASSWORD + "\n"))
    return token


def generation_of(result: CliResult) -> int:
    found = re.search(r"generation (\d+)", result.err)
    assert found, result
    return int(found.group(1))


def test_consent_prompt_attack_and_listed(live: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = participant(live, home)

    shown = ok(dataperf("studio", "show", NAME, home=home))
    assert shown.stdout.startswith("content warning:")
    assert "offensive" in shown.out
    assert "not accepted yet (`dataperf studio consent cli-nibbler`)" in shown.out
    assert "image_failure_violent" in shown.out
    assert "test generator" in shown.out

    early = refused(dataperf("studio", "prompt", NAME, PROMPT, home=home))
    assert "accept the content warning" in early.err
    assert f"dataperf studio consent {NAME}" in early.err

    declined = dataperf("studio", "consent", NAME, home=home, input="n\n")
    assert declined.returncode != 0, declined
    assert "content warning:" in declined.err
    assert "not accepted" in declined.err
    accepted = ok(dataperf("studio", "consent", NAME, home=home, input="y\n"))
    assert "accepted the content warning" in accepted.out
    repeated = ok(dataperf("studio", "consent", NAME, "--yes", home=home))
    assert f"you accepted the content warning of {NAME} already" in repeated.out
    assert "content warning accepted" in ok(dataperf("studio", "show", NAME, home=home)).out

    blurred_dir, clear_dir = tmp_path / "blurred", tmp_path / "clear"
    sent = ok(dataperf("studio", "prompt", NAME, f"  {PROMPT} ", "--save", blurred_dir,
                       home=home))
    generation = generation_of(sent)
    assert f"sent as generation {generation}" in sent.err
    assert "saved 4 blurred image(s)" in sent.err
    assert f"generation {generation}: 4 image(s) of {NAME} round 1" in sent.out
    for index in range(4):
        assert f"│ {index} │ made (test generator: noise, not a picture) │" in sent.out
    again = ok(dataperf("studio", "prompt", NAME, PROMPT, "--save", clear_dir, "--reveal",
                        home=home))
    assert f"generation {generation}: made before, the same images" in again.err
    assert "saved 4 clear image(s)" in again.err
    names = [f"{generation}-{index}.png" for index in range(4)]
    assert sorted(p.name for p in blurred_dir.iterdir()) == names
    assert sorted(p.name for p in clear_dir.iterdir()) == names
    with live.api(token) as api:
        for name in names:
            index = int(name.split("-")[1].removesuffix(".png"))
            path = f"/generations/{generation}/images/{index}"
            assert (blurred_dir / name).read_bytes() == api.get(path).content
            assert (clear_dir / name).read_bytes() == \
                api.get(path, params={"reveal": "true"}).content
            assert (clear_dir / name).read_bytes() != (blurred_dir / name).read_bytes()

    attack = ok(dataperf("studio", "attack", str(generation), "0", "--harm-type", "violent",
                         "--harm-type", "image_failure_bias", "--attack-mode",
                         "visual_similarity", "--target", "none", "--rewritten",
                         "a knight bleeding", home=home))
    assert f"image 0 of generation {generation}" in attack.out
    assert "pending" in attack.out
    assert "harm types image_failure_violent, image_failure_bias" in attack.out
    twice = refused(dataperf("studio", "attack", str(generation), "0", "--harm-type",
                             "violent", home=home))
    assert "image 0 of this prompt is submitted already" in twice.err
    unknown = refused(dataperf("studio", "attack", str(generation), "1", "--harm-type",
                               "boredom", "--target", "the moon", home=home))
    assert "'boredom' not in the round's vocabulary" in unknown.err
    assert "'the moon' not in the round's vocabulary" in unknown.err

    attacks = ok(dataperf("studio", "attacks", NAME, home=home))
    assert f"│ {generation} │ 0 │ pending │ image_failure_violent, image_failure_bias │ " \
           f"{PROMPT} │" in attacks.out
    attempts = ok(dataperf("studio", "attempts", NAME, home=home))
    assert f"│ {generation} │ done │ 4 │ 0 │ 0 │ {PROMPT} │" in attempts.out

    later = ok(dataperf("studio", "prompt", NAME, "[bold]a tower[/bold] at night",
                        "--no-wait", home=home))
    assert re.search(r"sent as generation \d+: (queued|running)", later.err), later
    assert "│ index │" not in later.out  # no images waited for
    listed = ok(dataperf("studio", "attempts", NAME, home=home))
    assert "[bold]a tower[/bold] at night" in listed.out  # a prompt is never read as markup
    assert listed.out.index("a tower") < listed.out.index(PROMPT)  # newest first


def test_refusals_are_the_platforms_messages(live: LiveServer, tmp_path: Path) -> None:
    anonymous = refused(dataperf("studio", "show", NAME, "--server", live.url,
                                 home=tmp_path / "nobody"))
    assert "log in first" in anonymous.err

    home = tmp_path / "home"
    participant(live, home)
    ok(dataperf("studio", "consent", NAME, "--yes", home=home))
    other_kind = refused(dataperf("studio", "show", OTHER_KIND, home=home))
    assert f"{OTHER_KIND} is not a red-teaming challenge" in other_kind.err
    missing = refused(dataperf("studio", "attempts", "no-such-challenge", home=home))
    assert "does not exist" in missing.err
    empty = refused(dataperf("studio", "prompt", NAME, "   ", home=home))
    assert "type a prompt first" in empty.err

    writer_home = tmp_path / "writer"
    participant(live, writer_home)
    ok(dataperf("studio", "consent", NAME, "--yes", home=writer_home))
    theirs = generation_of(ok(dataperf("studio", "prompt", NAME, "a quiet lake", "--no-wait",
                                       home=writer_home)))
    peeked = refused(dataperf("studio", "attack", str(theirs), "0", "--harm-type", "violent",
                              home=home))
    assert f"generation {theirs} does not exist (or is not visible to you)" in peeked.err


def test_an_image_made_elsewhere_is_uploaded(live: LiveServer, tmp_path: Path) -> None:
    name = "cli-uploads"
    live.host(CHALLENGE, name, owner_email="organizer@cli-studio.example.org")
    with live.api() as api:
        token = api.post("/auth/token", json={"email": "organizer@cli-studio.example.org",
                                               "password": PASSWORD}).json()["token"]
    with live.api(token) as api:
        api.patch(f"/challenges/{name}/rounds/1", json={"generators": {
            "generators": [{"name": "upload"}], "images_per_prompt": 1}}).raise_for_status()
    picture = tmp_path / "made elsewhere.webp"
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((40, 30)).save(buffer, format="WEBP")
    picture.write_bytes(buffer.getvalue())

    home = tmp_path / "home"
    participant(live, home)
    ok(dataperf("studio", "consent", name, "--yes", home=home))
    shown = ok(dataperf("studio", "show", name, home=home))
    assert f"dataperf studio upload {name}" in shown.out
    sent = ok(dataperf("studio", "upload", name, "a calm sea", picture, "--model",
                       "some model 1.0", home=home))
    generation = generation_of(sent)
    assert f"generation {generation}: 1 image(s) of {name} round 1" in sent.out
    attack = ok(dataperf("studio", "attack", str(generation), "0", "--harm-type", "violent",
                         home=home))
    assert "pending" in attack.out
    again = refused(dataperf("studio", "upload", name, "a calm sea", picture, "--model", "m",
                             home=home))
    assert "you uploaded an image for this prompt already" in again.err
    prompting = refused(dataperf("studio", "prompt", name, "a storm", home=home))
    assert "this round takes images you upload" in prompting.err


def test_a_studio_scoring_saved_scores_the_same_locally(live: LiveServer, tmp_path: Path
                                                        ) -> None:
    """`dataperf status ID --save DIR` keeps a studio scoring's folders, and `dataperf
    evaluate` on them gives the server's score."""
    home = tmp_path / "home"
    participant(live, home)
    ok(dataperf("studio", "consent", NAME, "--yes", home=home))
    generation = generation_of(ok(dataperf("studio", "prompt", NAME, "a wolf at the door",
                                           home=home)))
    ok(dataperf("studio", "attack", str(generation), "0", "--harm-type", "violent", home=home))
    with live.api() as api:
        organizer = api.post("/auth/token", json={"email": "organizer@cli-studio.example.org",
                                                  "password": PASSWORD}).json()["token"]
    for _ in range(5):
        email = f"r{time.monotonic_ns()}@cli-studio.example.org"
        rater = live.user(email)
        with live.api(organizer) as api:
            api.post(f"/challenges/{NAME}/raters", json={"email": email}).raise_for_status()
        with live.api(rater) as api:
            api.post(f"/challenges/{NAME}/consent").raise_for_status()
            while (given := api.post(f"/challenges/{NAME}/ratings").json()["rating"]):
                api.post(f"/ratings/{given['id']}/prompt", json={"text_safety": "safe"})
                api.post(f"/ratings/{given['id']}/answer",
                         json={"image_safety": "unsafe", "harm_types": ["violent"]})
    deadline = time.monotonic() + 120
    while True:
        listed = ok(dataperf("status", "--challenge", NAME, home=home)).out
        found = re.search(r"│ (\d+) │ cli-nibbler │ 1 │ scored │ ([\d.]+) │ studio", listed)
        if found:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.5)
    submission, hosted = found.group(1), float(found.group(2))
    saved = ok(dataperf("status", submission, "--save", tmp_path / "scoring", home=home))
    assert "saved 3 file(s)" in saved.err
    assert (tmp_path / "scoring" / "validations" / "validations.jsonl").is_file()
    local = ok(dataperf("evaluate", CHALLENGE, tmp_path / "scoring", "--json", home=home))
    (score,) = json.loads(local.stdout)  # one participant in one round
    assert f"{score['aggregate']['value']:.2f}" == f"{hosted:.2f}"
    assert hosted == 1.0
