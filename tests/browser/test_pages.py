"""The web pages in a real Chromium: a participant signs up, submits a baseline's files,
watches the status change and finds the entry on the leaderboard with the score the CLI
reports; an organizer hosts a challenge and opens a round; visitors cannot reach pages that are
not theirs; forged cross-site posts are refused and injected markup stays text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from browser_harness import screenshot
from dataperf.registry import get_challenge
from dataperf.submission_files import write_submission
from official_layout import dataperf
from platform_harness import PASSWORD, LiveServer

CHALLENGE = "vision-selection"


def _sign_up(page: object, name: str, email: str, team: str | None = None) -> None:
    page.goto("/signup")  # type: ignore[attr-defined]
    page.get_by_label("Name", exact=True).fill(name)  # type: ignore[attr-defined]
    page.get_by_label("Email", exact=True).fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)  # type: ignore[attr-defined]
    if team:
        page.get_by_label("Team name").fill(team)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create account").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/?done=welcome")  # type: ignore[attr-defined]
    assert "your account is ready" in page.get_by_role("status").inner_text()  # type: ignore[attr-defined]


def test_participant_submits_and_finds_the_cli_score_on_the_leaderboard(
        page: object, site: LiveServer, tmp_path: Path) -> None:
    p: object = page
    challenge = get_challenge(CHALLENGE)
    files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=11)
    folder = write_submission(files, tmp_path / "run")
    expected = json.loads(dataperf("evaluate", CHALLENGE, folder, "--json",
                                   home=tmp_path / "cli").stdout)["aggregate"]["value"]

    p.goto("/")  # type: ignore[attr-defined]
    screenshot(p, "home")
    _sign_up(p, "Grace", "grace@example.org", team="Compilers")
    p.get_by_role("link", name="Training data selection, vision").click()  # type: ignore[attr-defined]
    p.get_by_role("link", name="Submit").click()  # type: ignore[attr-defined]
    assert "10 of 10" in p.locator("[data-quota]").inner_text()  # type: ignore[attr-defined]

    p.get_by_label("Submission files").set_input_files([folder / "Trouser.csv"])  # type: ignore[attr-defined]
    p.get_by_role("button", name="Upload and score").click()  # type: ignore[attr-defined]
    alert = p.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    assert "Sneaker.csv" in alert  # immediate feedback naming the file and the problem
    assert "missing" in alert
    screenshot(p, "submit-rejected")

    p.get_by_label("Submission files").set_input_files(sorted(folder.iterdir()))  # type: ignore[attr-defined]
    p.get_by_label("Label").fill("random 11")  # type: ignore[attr-defined]
    p.get_by_role("button", name="Upload and score").click()  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r".*/submissions/\d+$"))  # type: ignore[attr-defined]
    first_state = p.locator("[data-field=state]").inner_text()  # type: ignore[attr-defined]
    assert first_state in ("queued", "running", "scored")
    p.locator(".state.scored").first.wait_for(timeout=120_000)  # type: ignore[attr-defined]
    shown = p.locator("[data-field=aggregate]").first.inner_text()  # type: ignore[attr-defined]
    assert shown == f"{expected:.2f}"
    assert p.get_by_text("class balance").count() == 3  # type: ignore[attr-defined]
    screenshot(p, "submission")

    p.goto(f"/challenges/{CHALLENGE}")  # type: ignore[attr-defined]
    assert "9 of 10" in p.locator("[data-quota]").inner_text()  # type: ignore[attr-defined]
    row = p.locator("table.board tbody tr", has_text="Compilers")  # type: ignore[attr-defined]
    assert f"{expected:.2f}" in row.inner_text()
    baseline = p.locator("table.board tbody tr.baseline")  # type: ignore[attr-defined]
    assert "baseline" in baseline.first.inner_text()
    assert p.locator("svg.chart").count() >= 1  # type: ignore[attr-defined]
    screenshot(p, "challenge")


def test_organizer_hosts_a_challenge_and_opens_a_round(page: object, site: LiveServer) -> None:
    p: object = page
    site.user("ora@example.org", role="organizer")
    p.goto("/login")  # type: ignore[attr-defined]
    p.get_by_label("Email").fill("ora@example.org")  # type: ignore[attr-defined]
    p.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    p.keyboard.press("Enter")  # type: ignore[attr-defined]
    p.wait_for_url("**/")  # type: ignore[attr-defined]
    p.get_by_role("link", name="Organize").click()  # type: ignore[attr-defined]
    p.locator("select[name=challenge]").select_option(CHALLENGE)  # type: ignore[attr-defined]
    p.get_by_label("Name in URLs").fill("vs-spring")  # type: ignore[attr-defined]
    p.get_by_label("Title (optional)").fill("Spring selection sprint")  # type: ignore[attr-defined]
    p.get_by_role("button", name="Host it").click()  # type: ignore[attr-defined]
    p.wait_for_url("**/challenges/vs-spring?done=hosted")  # type: ignore[attr-defined]
    assert "Spring selection sprint" in p.locator("h1").inner_text()  # type: ignore[attr-defined]
    assert "is hosted" in p.get_by_role("status").inner_text()  # type: ignore[attr-defined]

    p.goto("/organize")  # type: ignore[attr-defined]
    card = p.locator("section.card", has_text="vs-spring")  # type: ignore[attr-defined]
    card.get_by_label("Per round").fill("40")
    card.get_by_role("button", name="Save round").click()
    p.wait_for_url("**/organize?done=round_saved#vs-spring")  # type: ignore[attr-defined]
    assert "settings are saved" in p.get_by_role("status").inner_text()  # type: ignore[attr-defined]
    card = p.locator("section.card", has_text="vs-spring")  # type: ignore[attr-defined]
    assert card.get_by_label("Per round").input_value() == "40"
    card.get_by_label("Per day").fill("3")
    card.get_by_label("Private share").fill("0.3")
    card.get_by_role("button", name="Open a new round with these settings").click()
    p.wait_for_url("**/organize?done=round_opened#vs-spring")  # type: ignore[attr-defined]
    screenshot(p, "organize")
    p.goto("/challenges/vs-spring")  # type: ignore[attr-defined]
    text = p.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "round 2" in text
    assert "3 submissions per team per 24 hours" in text


def test_visitors_cannot_reach_pages_that_are_not_theirs(page: object, site: LiveServer) -> None:
    p: object = page
    for path in ("/account", "/submissions", "/organize", f"/challenges/{CHALLENGE}/submit"):
        p.goto(path)  # type: ignore[attr-defined]
        assert "/login" in p.url  # type: ignore[attr-defined]
    _sign_up(p, "Plain Participant", "plain@example.org")
    response = p.goto("/organize")  # type: ignore[attr-defined]
    assert response.status == 403
    assert "for organizers" in p.locator("main").inner_text()  # type: ignore[attr-defined]


def test_forged_cross_site_posts_are_refused(site: LiveServer) -> None:
    token = site.register("victim@example.org", "Victim")["token"]
    cookies = {"dp_session": token, "dp_csrf": "a" * 32}
    with httpx.Client(base_url=site.url, cookies=cookies) as browser_like:
        no_token = browser_like.post("/account/team", data={"name": "Pwned"})
        wrong = browser_like.post("/account/team", data={"name": "Pwned", "csrf": "b" * 32})
        api_post = browser_like.post("/api/v1/teams", json={"name": "Pwned"})
        right = browser_like.post("/account/team", data={"name": "Mine", "csrf": "a" * 32},
                                  follow_redirects=False)
    assert no_token.status_code == 403
    assert wrong.status_code == 403
    assert api_post.status_code == 401  # the session cookie never authorizes API changes
    assert right.status_code == 200  # same-site form with the matching token works
    with site.api(token) as api:
        assert api.get("/me").json()["team"]["name"] == "Mine"


def test_injected_markup_in_a_team_name_is_shown_as_text(
        page: object, site: LiveServer, tmp_path: Path) -> None:
    p: object = page
    dialogs: list[str] = []
    p.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore[attr-defined]
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    token = site.register("mallory@example.org", "Mallory", team=evil)["token"]
    challenge = get_challenge(CHALLENGE)
    files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=5)
    with site.api(token) as api:
        submitted = api.post(f"/challenges/{CHALLENGE}/submissions",
                             files=[("files", (n, d)) for n, d in files.items()]).json()
    site.wait(token, submitted["id"])
    p.goto(f"/challenges/{CHALLENGE}")  # type: ignore[attr-defined]
    assert p.locator("table.board").get_by_text(evil).count() == 1  # type: ignore[attr-defined]
    assert p.locator("ul.legend").get_by_text(evil).count() == 1  # type: ignore[attr-defined]
    assert p.locator("main img").count() == 0  # type: ignore[attr-defined]
    assert dialogs == []


def test_pages_fit_a_phone_screen_and_work_with_the_keyboard(
        browser: object, site: LiveServer) -> None:
    context = browser.new_context(base_url=site.url, viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    p = context.new_page()
    for path in ("/", f"/challenges/{CHALLENGE}", "/login", "/signup"):
        p.goto(path)
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
    screenshot(p, "challenge-phone")
    site.register("kb@example.org", "Keyboard User")
    p.goto("/login")
    p.wait_for_function(  # the email field has focus (autofocus lands after the load event)
        "() => document.activeElement && document.activeElement.name === 'email'")
    p.keyboard.type("kb@example.org")
    p.keyboard.press("Tab")
    p.keyboard.type(PASSWORD)
    p.keyboard.press("Enter")
    p.wait_for_url("**/")
    assert "Keyboard User" in p.locator("header").inner_text()
    p.goto(f"/challenges/{CHALLENGE}")
    header = p.locator("th", has_text="Score")
    header.focus()
    p.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") in ("ascending", "descending")
    context.close()


def test_the_api_docs_render_the_schema_offline(page: object, site: LiveServer) -> None:
    """The interactive docs read the OpenAPI 3.1 schema FastAPI writes (Swagger UI 5, served
    from the installed package) and list the operations, with nothing fetched elsewhere and
    nothing refused by the page's content security policy."""
    p: object = page
    outside: list[str] = []
    p.on("request", lambda r: outside.append(r.url)  # type: ignore[attr-defined]
         if not r.url.startswith(site.url) else None)
    logged: list[str] = []
    p.on("console", lambda m: logged.append(m.text)  # type: ignore[attr-defined]
         if m.type == "error" else None)
    p.on("pageerror", lambda e: logged.append(str(e)))  # type: ignore[attr-defined]
    p.goto("/docs")  # type: ignore[attr-defined]
    p.locator(".opblock").first.wait_for(timeout=30_000)  # type: ignore[attr-defined]
    text = p.locator("body").inner_text()  # type: ignore[attr-defined]
    assert "Unable to render this definition" not in text
    assert "/api/v1/challenges/{name}/submissions" in text
    assert "3.1" in httpx.get(f"{site.url}/api/v1/openapi.json").json()["openapi"]
    p.locator(".opblock").first.click()  # type: ignore[attr-defined]
    p.get_by_text("Try it out").first.wait_for()  # type: ignore[attr-defined]
    assert outside == []
    assert logged == []
    screenshot(p, "api-docs")


# Every page, as each kind of visitor sees it ---------------------------------------------------

PHONE = {"width": 390, "height": 844}
# Visible elements that must say something (or carry an aria-label); headings above all.
UNNAMED = """() => [...document.querySelectorAll('h1,h2,h3,h4,th,button,a,label,summary')]
    .filter(e => e.checkVisibility() && !e.innerText.trim() && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML.slice(0, 120))"""
NOT_CRAWLED = ("/api/", "/docs", "/static/", "/logout", "/favicon.ico")


def _crawl(browser: object, site: LiveServer, email: str | None, start: list[str],
           limit: int = 60) -> dict[str, list[str]]:
    """Follow the site's own links from ``start`` on a phone-sized screen, one page per path,
    and list each page's problems (empty if none)."""
    context = browser.new_context(base_url=site.url, viewport=PHONE)  # type: ignore[attr-defined]
    p = context.new_page()
    logged: list[str] = []
    p.on("console", lambda m: logged.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: logged.append(str(e)))
    if email:
        p.goto("/login")
        p.get_by_label("Email", exact=True).fill(email)
        p.get_by_label("Password").fill(PASSWORD)
        p.keyboard.press("Enter")
        p.wait_for_url("**/")
    queue, seen, found = list(start), set(), {}
    while queue and len(found) < limit:
        target = queue.pop(0)
        path = target.split("?")[0].split("#")[0]
        if path in seen or path.startswith(NOT_CRAWLED):
            continue
        seen.add(path)
        logged.clear()
        response = p.goto(target)
        problems = [] if response and response.status == 200 else [
            f"HTTP {response.status if response else None}"]
        overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            problems.append(f"scrolls sideways by {overflow}px at 390px")
        problems += [f"console: {line}" for line in logged]
        problems += [f"unnamed: {html}" for html in p.evaluate(UNNAMED)]
        title, heading = p.title(), p.locator("h1").first.inner_text().strip()
        if not title.endswith(" · DataPerf") or title == "DataPerf · DataPerf":
            problems.append(f"title {title!r}")
        if not heading or heading[0] in ":·-":
            problems.append(f"heading {heading!r}")
        found[target] = problems
        queue += [link for link in p.eval_on_selector_all(
            "a[href^='/']", "links => links.map(a => a.getAttribute('href'))")
            if link.split("?")[0].split("#")[0] not in seen]
    context.close()
    return found


def test_every_page_fits_a_phone_and_names_its_parts(
        browser: object, site: LiveServer, tmp_path: Path) -> None:
    """Anonymous visitors, a participant with a scored submission, a rater, an organizer with
    a challenge of their own, and an admin each crawl the pages their links reach: every one
    answers 200, fits 390 px, logs no browser error, names every heading, header, link and
    button, and has a title of its own. Error pages read "404: Not found"."""
    participant = site.register("crawler@example.org", "Crawler", team="Crawlers")["token"]
    challenge = get_challenge(CHALLENGE)
    files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=3)
    with site.api(participant) as api:
        sid = api.post(f"/challenges/{CHALLENGE}/submissions",
                       files=[("files", (n, d)) for n, d in files.items()]).json()["id"]
    site.wait(participant, sid)
    admin = site.user("crawl-admin@example.org", role="admin")
    site.user("crawl-org@example.org", role="organizer")
    site.host(CHALLENGE, "crawl-own", owner_email="crawl-org@example.org")
    site.user("crawl-rater@example.org")
    with site.api(admin) as api:
        granted = api.post("/challenges/adversarial-nibbler/raters",
                           json={"email": "crawl-rater@example.org"})
        assert granted.status_code == 201, granted.text
    nibbler = "/challenges/adversarial-nibbler"
    visitors = {None: ["/", "/login", "/signup"],
                "crawler@example.org": ["/", f"/submissions/{sid}", f"{nibbler}/studio"],
                "crawl-rater@example.org": ["/", f"{nibbler}/rate", f"{nibbler}/rate/stats"],
                "crawl-org@example.org": ["/", "/organize", "/organize/crawl-own/submissions"],
                "crawl-admin@example.org": ["/", "/organize", f"{nibbler}/raters"]}
    pages = 0
    for email, start in visitors.items():
        found = _crawl(browser, site, email, start)
        pages += len(found)
        assert set(start) <= set(found)
        bad = {page: problems for page, problems in found.items() if problems}
        assert not bad, f"{email or 'anonymous'}: {bad}"
    assert pages >= 40

    context = browser.new_context(base_url=site.url)  # type: ignore[attr-defined]
    p = context.new_page()
    assert p.goto("/challenges/no-such-challenge").status == 404
    assert p.locator("h1").inner_text().startswith("404: Not found")
    assert p.title() == "Not found · DataPerf"
    icon = httpx.get(f"{site.url}/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    context.close()
