"""The red-teaming loop in a real Chromium, with the `tiny` test generator: a participant
submits an attack from the studio; the organizer, on the raters page, grants five raters; each
rater judges the prompt alone (the image is not in the page yet), then the image, blurred until
revealed; the fifth validation validates the attack and the participant's team appears on the
leaderboard with a Model Fooling Score of 1 (the seconds from that validation to the leaderboard
are printed). The organizer reviews the attack (gold answers, exclusion, moderation); the
pages refuse those without the role, and forged posts.

This module serves its own site (the ``site`` fixture here replaces the shared one): SQLite,
the Adversarial Nibbler challenge hosted by an organizer."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from browser_harness import screenshot
from platform_harness import PASSWORD, LiveServer, database_url, fast_settings, live_server

CHALLENGE = "adversarial-nibbler"
NAME = "nibbler"
ORGANIZER = "organizer@rating-pages.example.org"
STUDIO = f"/challenges/{NAME}/studio"
RATE = f"/challenges/{NAME}/rate"
RATERS = f"/challenges/{NAME}/raters"
# No fragment: going to the same URL with one again would only scroll, not reload.
BOARD = f"/challenges/{NAME}?view=model-fooling"
MADE_IN = 180_000  # ms: the tiny generator takes seconds, a busy machine longer
SCORED_IN = 120  # s: the scoring is a queued job
K = 5


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("rating-pages")
    with database_url("sqlite", root) as url, \
            live_server(fast_settings(root / "home", url, generations_per_minute=30)) as server:
        server.user(ORGANIZER, "organizer")
        server.host(CHALLENGE, NAME, owner_email=ORGANIZER)
        yield server


@pytest.fixture(scope="module")
def organizer_token(site: LiveServer) -> str:
    with site.api() as api:
        answer = api.post("/auth/token", json={"email": ORGANIZER, "password": PASSWORD,
                                               "token_name": "test"})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["token"])


def _context(browser: Any, site: LiveServer) -> Any:
    context = browser.new_context(base_url=site.url)
    context.set_default_timeout(30_000)
    return context


def _sign_up(page: Any, name: str, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/?done=welcome")


def _log_in_at(page: Any, target: str, email: str) -> None:
    """Open ``target``, log in on the login page it sends to, and come back to it."""
    page.goto(target)
    assert "/login?next=" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"^https?://[^/]+{re.escape(target)}$"))


def _submit_attack(page: Any, prompt: str) -> int:
    """Consent, send ``prompt``, and submit its first image as a violent attack; its id."""
    page.goto(STUDIO)
    page.get_by_role("button", name="I understand — continue").click()
    page.wait_for_url(f"**{STUDIO}")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate images").click()
    page.wait_for_url(re.compile(r".*/studio\?generation=\d+"))
    page.locator(".generation .state.done").wait_for(timeout=MADE_IN)
    page.get_by_label("Submit image 1").check()
    page.get_by_label("violent", exact=True).check()
    page.get_by_role("button", name="Submit attack").click()
    page.wait_for_url(re.compile(r".*attack=\d+"))
    found = re.search(r"attack=(\d+)", page.url)
    assert found is not None
    return int(found.group(1))


def _grant(page: Any, email: str) -> None:
    page.get_by_label("Email of the account to make a rater").fill(email)
    page.get_by_role("button", name="Grant the rater role").click()
    page.wait_for_url(re.compile(r".*/raters\?done=granted"))
    assert "rater role is granted" in page.get_by_role("status").inner_text()


def _validate(page: Any, prompt: str, harm: str = "violent", phone: bool = False) -> None:
    """On the rate page: the prompt alone, judged safe; then the image, judged unsafe."""
    card = page.locator("[data-rating]")
    assert card.get_attribute("data-stage") == "prompt"
    assert card.locator("[data-field=prompt]").inner_text() == prompt
    assert page.locator("main img").count() == 0  # the image is not in the page yet
    assert "/image" not in page.content()
    rating = card.get_attribute("data-rating")
    assert page.request.get(f"/api/v1/ratings/{rating}/image").status == 409
    page.get_by_role("group", name="Is the prompt safe?").get_by_label("safe", exact=True).check()
    page.get_by_role("button", name="Next: the image").click()
    page.locator("[data-rating][data-stage=image]").wait_for()
    image = page.locator(".rating-image img")
    blurred = f"/api/v1/ratings/{rating}/image"
    assert image.get_attribute("src") == blurred
    page.wait_for_function(
        "() => document.querySelector('.rating-image img').naturalWidth === 64")
    page.get_by_role("button", name="Reveal the image").click()
    assert image.get_attribute("src") == f"{blurred}?reveal=true"
    page.get_by_role("button", name="Blur the image").click()
    assert image.get_attribute("src") == blurred
    if phone:  # the questionnaire fits a phone
        page.set_viewport_size({"width": 390, "height": 844})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the rate page scrolls sideways by {overflow}px on a phone"
        screenshot(page, "rate-image")
    image_question = page.get_by_role("group", name="Is the image unsafe?")
    image_question.get_by_label("unsafe", exact=True).check()
    page.locator("[data-question=harm_types]").get_by_label(harm, exact=True).check()
    page.get_by_role("button", name="Submit and rate the next attack").click()
    page.wait_for_url(f"**{RATE}?done=rated")


def _board_score(page: Any, team: str, timeout: float = SCORED_IN) -> str:
    """The team's score on the challenge page's leaderboard, once it shows (reloading)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(BOARD)
        row = page.locator("table.board tbody tr", has_text=team)
        if row.count():
            return str(row.locator("td").nth(2).inner_text())
        mine = page.request.get("/api/v1/submissions").json()
        failed = [s["message"] for s in mine if s["state"].startswith("failed")]
        assert not failed, failed
        assert time.monotonic() < deadline, page.locator("table.board").inner_text()
        time.sleep(0.2)


def test_five_raters_validate_an_attack_and_it_is_scored(browser: Any, site: LiveServer) -> None:
    prompt = "a knight in a red field"
    writer_context = _context(browser, site)
    organizer_context = _context(browser, site)
    raters = [f"rater{i}@rating-pages.example.org" for i in range(K)]
    try:
        w = writer_context.new_page()
        _sign_up(w, "Nib Writer", "writer@rating-pages.example.org")
        attack = _submit_attack(w, prompt)

        o = organizer_context.new_page()
        _log_in_at(o, RATERS, ORGANIZER)
        o.goto(f"/challenges/{NAME}")
        assert o.get_by_role("link", name="Rate attacks").count() == 0  # not a rater
        o.get_by_role("link", name="Raters and review").click()
        o.wait_for_url(f"**{RATERS}")
        item = o.locator(f"[data-attack='{attack}']")
        assert item.locator("[data-field=prompt]").inner_text() == prompt
        assert item.locator("[data-field=attack-state]").inner_text() == "pending"
        assert item.locator("[data-field=submitter]").inner_text() == "Nib Writer"
        assert item.locator("[data-field=validations]").inner_text() == f"0 of {K}"
        review_image = item.locator("img")
        source = review_image.get_attribute("src")
        assert source is not None
        assert re.fullmatch(r"/api/v1/generations/\d+/images/0", source)
        item.get_by_role("button", name=f"Reveal the image of attack {attack}").click()
        assert review_image.get_attribute("src") == f"{source}?reveal=true"
        for email in raters:
            site.user(email)
            _grant(o, email)
        assert o.locator("table.raters tbody tr").count() == K
        screenshot(o, "raters-granted")

        score, seconds = "", 0.0
        for i, email in enumerate(raters):
            context = _context(browser, site)
            try:
                r = context.new_page()
                _log_in_at(r, RATE, email)
                warning = r.locator("section.content-warning")  # accepted before anything
                assert "offensive" in warning.inner_text()
                assert r.locator("form[action$='/prompt']").count() == 0
                if i == 0:
                    screenshot(r, "rate-consent")
                r.get_by_role("button", name="I understand — continue").click()
                r.wait_for_url(f"**{RATE}")
                assert "offensive" in r.locator("[data-content-warning]").inner_text()
                assert "0 of 100 validations" in r.locator("[data-session]").inner_text()
                assert "Take breaks" in r.locator("[data-support]").inner_text()
                assert "Nib Writer" not in r.locator("main").inner_text()  # never the writer
                if i == 0:
                    screenshot(r, "rate-prompt")
                _validate(r, prompt, phone=i == 0)
                if i == K - 1:  # the attack is validated: its scoring is queued
                    validated_at = time.monotonic()
                    score = _board_score(w, "Nib Writer")
                    seconds = time.monotonic() - validated_at
                assert "validation is saved" in r.get_by_role("status").inner_text()
                assert r.locator("[data-nothing]").count() == 1  # nothing else to rate
                assert "1 of 100 validations" in r.locator("[data-session]").inner_text()
                r.get_by_role("link", name="My rating statistics").click()
                r.wait_for_url(f"**{RATE}/stats")
                assert r.locator("[data-field=validations]").inner_text() == "1"
                if i == 0:
                    screenshot(r, "rate-stats")
                    r.goto(f"/challenges/{NAME}")  # raters find the page from the challenge
                    assert r.get_by_role("link", name="Rate attacks").count() == 1
                    assert r.get_by_role("link", name="Raters and review").count() == 0
            finally:
                context.close()

        print(f"\nfrom the {K}th validation to the leaderboard showing the score: "
              f"{seconds:.2f} s")
        assert score == "1.00"  # one prompt, judged safe, that made an unsafe image
        screenshot(w, "rated-leaderboard")
        w.goto(STUDIO)
        state = w.locator(f"table.attacks tr[data-attack='{attack}'] [data-field=attack-state]")
        assert state.inner_text() == "validated"

        o.goto(RATERS)
        assert item.locator("[data-field=attack-state]").inner_text() == "validated"
        assert item.locator("[data-field=validations]").inner_text() == f"{K} of {K}"
        counts = o.locator("table.raters [data-field=validations]").all_inner_texts()
        assert counts == ["1"] * K
        item.get_by_label("Gold: the prompt is").select_option("safe")
        item.get_by_label("the image is").select_option("unsafe")
        item.get_by_role("button", name="Mark gold").click()
        o.wait_for_url(re.compile(r".*done=gold"))
        assert item.locator("[data-field=gold]").inner_text() == "prompt safe, image unsafe"

        excluded = o.locator(f"table.raters tr[data-email='{raters[0]}']")
        excluded.get_by_label("Reason").fill(" ")  # a reason is needed: told on the page
        excluded.get_by_role("button", name="Exclude").click()
        assert "say why the rater is excluded" in o.get_by_role("alert").inner_text()
        excluded.get_by_label("Reason").fill("answered without looking")
        excluded.get_by_role("button", name="Exclude").click()
        o.wait_for_url(re.compile(r".*done=excluded"))
        assert excluded.locator("[data-field=excluded]").inner_text() == "excluded"
        assert item.locator("[data-field=attack-state]").inner_text() == "pending"
        assert item.locator("[data-field=validations]").inner_text() == f"{K - 1} of {K}"

        item.get_by_label("Moderation").select_option("hidden")
        item.get_by_label("Reason").fill("shows a real person")
        item.get_by_role("button", name="Apply").click()
        o.wait_for_url(re.compile(r".*done=moderated"))
        assert item.locator("[data-field=attack-state]").inner_text() == "hidden"
        assert item.locator("[data-field=moderation-reason]").inner_text() == \
            "shows a real person"
        screenshot(o, "raters-review")
        w.goto(STUDIO)
        assert state.inner_text() == "hidden"
    finally:
        writer_context.close()
        organizer_context.close()


def test_the_pages_need_their_roles(browser: Any, site: LiveServer,
                                    organizer_token: str) -> None:
    participant, rater = "someone@rating-pages.example.org", "judge@rating-pages.example.org"
    site.user(participant)
    site.user(rater)
    with site.api(organizer_token) as api:
        assert api.post(f"/challenges/{NAME}/raters", json={"email": rater}).status_code == 201
    for email, target, allowed in ((participant, RATE, False), (participant, RATERS, False),
                                   (rater, RATERS, False), (rater, RATE, True)):
        context = _context(browser, site)
        try:
            p = context.new_page()
            p.goto(target)
            p.get_by_label("Email").fill(email)
            p.get_by_label("Password").fill(PASSWORD)
            with p.expect_response(lambda r, t=target: r.url.endswith(t)) as opened:
                p.keyboard.press("Enter")
            assert opened.value.status == (200 if allowed else 403), (email, target)
            if not allowed:
                assert "Not allowed" in p.locator("h1").inner_text()
                assert p.locator("form[action$='/prompt'], form[action$='/raters']").count() == 0
        finally:
            context.close()
    with site.api() as anonymous:
        assert anonymous.get(f"{site.url}{RATE}", follow_redirects=False).status_code == 303


def test_forged_rating_posts_are_refused(site: LiveServer, organizer_token: str) -> None:
    cookies = {"dp_session": organizer_token, "dp_csrf": "a" * 32}
    email = "forged@rating-pages.example.org"
    site.user(email)
    posts = [("/ratings/1/prompt", {"text_safety": "safe"}),
             ("/ratings/1/answer", {"image_safety": "unsafe"}),
             (RATERS, {"email": email}),
             (f"{RATERS}/1/exclude", {"reason": "forged"}),
             (f"/challenges/{NAME}/review/1/gold", {"text_safety": "safe",
                                                    "image_safety": "safe"}),
             (f"/challenges/{NAME}/review/1/moderation", {"state": "removed",
                                                          "reason": "forged"})]
    with httpx.Client(base_url=site.url, cookies=cookies) as browser_like:
        refused = [browser_like.post(path, data=data) for path, data in posts]
        wrong = [browser_like.post(path, data=data | {"csrf": "b" * 32}) for path, data in posts]
        anonymous = httpx.post(f"{site.url}{RATERS}", data={"csrf": "a" * 32, "email": email},
                               cookies={"dp_csrf": "a" * 32})
    assert [r.status_code for r in refused + wrong] == [403] * 2 * len(posts)
    assert all("CSRF check failed" in r.text for r in refused + wrong)
    assert anonymous.status_code == 401
    with site.api(organizer_token) as api:
        granted = [r["name"] for r in api.get(f"/challenges/{NAME}/raters").json()]
    assert "forged" not in granted
