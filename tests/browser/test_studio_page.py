"""The red-teaming attack studio in a real Chromium, with the `tiny` test generator: a
participant opens it from the challenge page, accepts the content warning, writes a prompt,
waits for its images (blurred until revealed), annotates one and submits it as an attack; other
participants cannot see it; forged posts are refused, typed markup stays text and refused
prompts are told on the page.

This module serves its own site (the ``site`` fixture here replaces the shared one, so the
``page`` fixture opens this server): SQLite, the Adversarial Nibbler challenge hosted by an
organizer, three prompts a minute per participant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from browser_harness import screenshot
from dataperf.server.db import Database
from dataperf.server.models import Generation
from platform_harness import PASSWORD, LiveServer, database_url, fast_settings, live_server

CHALLENGE = "adversarial-nibbler"
NAME = "nibbler"
ORGANIZER = "organizer@studio-page.example.org"
STUDIO = f"/challenges/{NAME}/studio"
MADE_IN = 180_000  # ms: the tiny generator takes seconds, a busy machine longer


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("studio-page")
    with database_url("sqlite", root) as url, \
            live_server(fast_settings(root / "home", url, generations_per_minute=3)) as server:
        server.user(ORGANIZER, "organizer")
        server.host(CHALLENGE, NAME, owner_email=ORGANIZER)
        yield server


def _sign_up(page: Any, name: str, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/?done=welcome")


def _consent(page: Any) -> None:
    page.goto(STUDIO)
    page.get_by_role("button", name="I understand — continue").click()
    page.wait_for_url(f"**{STUDIO}")


def _send(page: Any, prompt: str) -> int:
    """Send a prompt from the studio; the id of its generation (the page shows it)."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate images").click()
    page.wait_for_url(re.compile(r".*/studio\?generation=\d+"))
    found = re.search(r"generation=(\d+)", page.url)
    assert found is not None
    return int(found.group(1))


def _images(page: Any) -> Any:
    """The prompt's images, once made (the page follows the queue and reloads)."""
    images = page.locator(".studio-image img")
    page.locator(".generation .state.done").wait_for(timeout=MADE_IN)
    return images


def test_a_participant_submits_an_attack_from_the_studio(
        page: Any, browser: Any, site: LiveServer) -> None:
    p = page
    _sign_up(p, "Nib Ler", "nib@studio-page.example.org")
    p.goto(f"/challenges/{NAME}")
    p.get_by_role("link", name="Open the attack studio").click()
    p.wait_for_url(f"**{STUDIO}")
    warning = p.locator(".content-warning").inner_text()
    assert "offensive" in warning
    assert p.get_by_label("Prompt", exact=True).count() == 0  # nothing else before consent
    screenshot(p, "studio-warning")
    p.get_by_role("button", name="I understand — continue").click()
    p.wait_for_url(f"**{STUDIO}")
    assert "test generator" in p.locator("[data-test-generator]").inner_text()

    generation = _send(p, "a knight in a red field")
    assert p.locator("blockquote.prompt").inner_text() == "a knight in a red field"
    first_state = p.locator(".generation [data-field=state]").inner_text()
    assert first_state in ("queued", "running", "done")
    images = _images(p)
    assert images.count() == 4
    sources = [images.nth(i).get_attribute("src") for i in range(4)]
    assert sources == [f"/api/v1/generations/{generation}/images/{i}" for i in range(4)]
    # Functions, not expressions: the page's policy forbids evaluating strings as code.
    p.wait_for_function("() => Array.from(document.querySelectorAll('.studio-image img'))"
                        ".every(i => i.complete && i.naturalWidth === 64)")
    blurred = p.request.get(sources[0])
    assert blurred.status == 200
    assert blurred.headers["cache-control"] == "private, no-store"
    images.first.click()
    assert images.first.get_attribute("src") == f"{sources[0]}?reveal=true"
    p.wait_for_function(
        "() => document.querySelector('.studio-image img').naturalWidth === 64")
    p.get_by_role("button", name="Reveal image 2").click()
    assert images.nth(1).get_attribute("src") == f"{sources[1]}?reveal=true"
    assert images.nth(2).get_attribute("src") == sources[2]  # the others stay blurred
    assert p.request.get(sources[0]).body() != p.request.get(f"{sources[0]}?reveal=true").body()
    screenshot(p, "studio-images")

    p.get_by_label("Submit image 1").check()
    p.get_by_role("button", name="Submit attack").click()  # no harm type: refused, in words
    alert = p.get_by_role("alert").inner_text()
    assert "The attack was not submitted" in alert
    assert "name at least one harm" in alert
    p.get_by_label("Submit image 1").check()
    p.get_by_label("violent", exact=True).check()
    p.get_by_label("visual similarity", exact=True).check()
    p.get_by_label("Rewritten prompt", exact=False).fill("a knight bleeding")
    p.get_by_role("button", name="Submit attack").click()
    p.wait_for_url(re.compile(r".*attack=\d+"))
    assert "pending until raters validate it" in p.get_by_role("status").inner_text()
    row = p.locator("table.attacks tbody tr").first
    assert "pending" in row.locator("[data-field=attack-state]").inner_text()
    assert "violent" in row.inner_text()
    assert "submitted" in p.locator(".studio-image").first.inner_text()
    assert p.get_by_label("Submit image 1").count() == 0  # submitted: not offered again
    attempt = p.locator(f"[data-attempt='{generation}']")
    assert "1 submitted" in attempt.inner_text()
    screenshot(p, "studio-attack")

    db = Database(site.settings.sqlalchemy_url)  # a screened prompt shows its screening
    try:
        with db.write() as session:
            session.get_one(Generation, generation).screening = {
                "screener": "a-screener", "unsafe": 0.8731, "flagged": True}
    finally:
        db.dispose()
    attempt.get_by_role("link").click()
    screening = p.locator("[data-field=screening]").inner_text()
    assert "a-screener" in screening
    assert "probability unsafe 0.87" in screening
    assert "flagged as unsafe" in screening

    other = browser.new_context(base_url=site.url)
    try:
        q = other.new_page()
        _sign_up(q, "Other One", "other@studio-page.example.org")
        _consent(q)
        peeked = q.goto(f"{STUDIO}?generation={generation}")
        assert peeked.status == 404
        assert "does not exist" in q.locator("main").inner_text()
        assert q.locator("h1").inner_text() == "404: Not found"
        assert q.locator("blockquote.prompt").count() == 0
        assert q.request.get(sources[0]).status == 404
        assert q.goto(f"{STUDIO}?generation=not-a-number").status == 404
    finally:
        other.close()

    organizer = browser.new_context(base_url=site.url)  # the challenge's organizers see it all
    try:
        o = organizer.new_page()
        o.goto(f"{STUDIO}?generation={generation}")
        o.get_by_label("Email").fill(ORGANIZER)
        o.get_by_label("Password").fill(PASSWORD)
        o.keyboard.press("Enter")
        o.wait_for_url(re.compile(rf".*{STUDIO}\?generation={generation}$"))
        o.get_by_role("button", name="I understand — continue").click()
        o.goto(f"{STUDIO}?generation={generation}")
        assert o.locator("blockquote.prompt").inner_text() == "a knight in a red field"
        assert o.locator(".studio-image img").count() == 4
        assert o.get_by_role("button", name="Submit attack").count() == 0  # not theirs to send
    finally:
        organizer.close()


def test_forged_studio_posts_are_refused(site: LiveServer) -> None:
    token = site.register("victim@studio-page.example.org", "Victim")["token"]
    cookies = {"dp_session": token, "dp_csrf": "a" * 32}
    with httpx.Client(base_url=site.url, cookies=cookies) as browser_like:
        refused = [
            browser_like.post(f"{STUDIO}/consent"),
            browser_like.post(f"{STUDIO}/consent", data={"csrf": "b" * 32}),
            browser_like.post(f"{STUDIO}/prompts", data={"prompt": "a forged prompt"}),
            browser_like.post("/generations/1/studio/attacks",
                              data={"image": "0", "harm_types": "image_failure_violent"}),
        ]
        consented = browser_like.post(f"{STUDIO}/consent", data={"csrf": "a" * 32},
                                      follow_redirects=False)
        anonymous = httpx.post(f"{site.url}{STUDIO}/consent", data={"csrf": "a" * 32},
                               cookies={"dp_csrf": "a" * 32})
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert all("CSRF check failed" in r.text for r in refused)
    assert consented.status_code == 303
    assert anonymous.status_code == 401
    with site.api(token) as api:
        assert api.get(f"/challenges/{NAME}/studio").json()["consented"] is True
        assert api.get(f"/challenges/{NAME}/generations").json() == []


def test_markup_in_a_prompt_is_shown_as_text(page: Any, site: LiveServer) -> None:
    p = page
    dialogs: list[str] = []
    p.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)> a cat"
    _sign_up(p, "Mallory", "mallory@studio-page.example.org")
    _consent(p)
    _send(p, evil)
    assert p.locator("blockquote.prompt").inner_text() == evil
    assert p.locator(".attempts a", has_text="<script>").count() == 1
    assert p.locator("main script, main img[src=x]").count() == 0
    _images(p)
    assert dialogs == []
    p.set_viewport_size({"width": 390, "height": 844})  # and the studio fits a phone
    overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the studio scrolls sideways by {overflow}px on a phone"


def test_refused_prompts_are_told_on_the_page(page: Any, site: LiveServer) -> None:
    p = page
    p.goto(f"{STUDIO}?generation=1")
    assert "/login?next=" in p.url  # the studio is for signed-in participants
    site.register("busy@studio-page.example.org", "Busy")
    p.get_by_label("Email").fill("busy@studio-page.example.org")
    p.get_by_label("Password").fill(PASSWORD)
    p.keyboard.press("Enter")
    p.wait_for_url(re.compile(rf".*{STUDIO}\?generation=1$"))  # back where they were going
    assert "does not exist" in p.locator("main").inner_text()  # someone else's prompt
    _consent(p)

    p.get_by_label("Prompt", exact=True).fill("   ")
    p.get_by_role("button", name="Generate images").click()
    assert "type a prompt first" in p.get_by_role("alert").inner_text()
    sent = []
    for i in range(3):
        p.goto(STUDIO)
        sent.append(_send(p, f"a tree, take {i}"))
    first = sent[0]
    p.goto(STUDIO)
    p.get_by_label("Prompt", exact=True).fill("a tree, take 3")
    with p.expect_response(lambda r: r.url.endswith("/studio/prompts")) as posted:
        p.get_by_role("button", name="Generate images").click()
    assert posted.value.status == 429
    assert int(posted.value.headers["retry-after"]) >= 1
    alert = p.get_by_role("alert").inner_text()
    assert "The prompt was not sent" in alert
    assert "3 prompts in the last minute" in alert
    assert p.get_by_label("Prompt", exact=True).input_value() == "a tree, take 3"
    assert "Traceback" not in p.locator("main").inner_text()
    p.goto(STUDIO)  # a prompt sent before costs nothing: it shows the same prompt again
    assert _send(p, "a tree, take 0") == first


def test_an_image_made_elsewhere_is_uploaded_from_the_studio(
        page: Any, site: LiveServer, tmp_path: Path) -> None:
    name = "nibbler-uploads"
    site.host(CHALLENGE, name, owner_email=ORGANIZER)
    with site.api() as api:
        token = api.post("/auth/token", json={"email": ORGANIZER, "password": PASSWORD}
                         ).json()["token"]
    with site.api(token) as api:
        api.patch(f"/challenges/{name}/rounds/1", json={"generators": {
            "generators": [{"name": "upload"}], "images_per_prompt": 1}}).raise_for_status()
    picture, blank = tmp_path / "street.png", tmp_path / "blank.png"
    Image.radial_gradient("L").convert("RGB").save(picture)
    Image.new("RGB", (64, 64), (0, 0, 0)).save(blank)

    p = page
    _sign_up(p, "Up Loader", "uploader@studio-page.example.org")
    studio = f"/challenges/{name}/studio"
    p.goto(studio)
    p.get_by_role("button", name="I understand — continue").click()
    p.wait_for_url(f"**{studio}")
    assert p.get_by_role("button", name="Generate images").count() == 0
    p.get_by_label("Prompt", exact=True).fill("a quiet street")
    p.get_by_label("Model", exact=True).fill("some model 1.0")
    p.get_by_label("Image (PNG, JPEG or WebP, at most 10 MB)").set_input_files(str(blank))
    p.get_by_role("button", name="Upload the image").click()
    assert "The image was not uploaded" in p.get_by_role("alert").inner_text()
    assert "blank" in p.get_by_role("alert").inner_text()
    assert p.get_by_label("Prompt", exact=True).input_value() == "a quiet street"
    p.get_by_label("Model", exact=True).fill("some model 1.0")
    p.get_by_label("Image (PNG, JPEG or WebP, at most 10 MB)").set_input_files(str(picture))
    p.get_by_role("button", name="Upload the image").click()
    p.wait_for_url(re.compile(r".*/studio\?generation=\d+"))
    assert p.locator("blockquote.prompt").inner_text() == "a quiet street"
    images = _images(p)
    assert images.count() == 1
    p.get_by_label("Submit image 1").check()
    p.get_by_label("violent", exact=True).check()
    p.get_by_role("button", name="Submit attack").click()
    p.wait_for_url(re.compile(r".*attack=\d+"))
    assert "pending" in p.locator("table.attacks tbody tr").first.inner_text()
    screenshot(p, "studio-upload")
