"""Security headers on every kind of answer (pages, the API, static files, errors, refusals
of the body limit, the docs) and the flags of the session and CSRF cookies, over HTTP and
HTTPS. The policies are checked by a browser in tests/browser (no page logs a refusal)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from dataperf.server.app import create_app
from platform_harness import PASSWORD, fast_settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
ANSWERS = [  # (method, path, status)
    ("GET", "/", 200), ("GET", "/login", 200), ("GET", "/challenges/vision-selection", 200),
    ("GET", "/api/v1/challenges", 200), ("GET", "/api/v1/health", 200),
    ("GET", "/api/v1/openapi.json", 200), ("GET", "/static/web/app.css", 200),
    ("GET", "/favicon.ico", 200), ("GET", "/no-such-page", 404),
    ("GET", "/api/v1/me", 401), ("POST", "/api/v1/auth/token", 422),
]


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory) -> object:
    return fast_settings(tmp_path_factory.mktemp("home"), workers=0)


@pytest.fixture(scope="module", params=["http", "https"])
def client(request: pytest.FixtureRequest, app_settings: object) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings),  # type: ignore[arg-type]
                    base_url=f"{request.param}://testserver") as test_client:
        yield test_client


@pytest.mark.parametrize(("method", "path", "status"), ANSWERS)
def test_every_answer_carries_the_headers(client: TestClient, method: str, path: str,
                                          status: int) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status, answer.text
    assert {name: answer.headers.get(name) for name in EXPECTED} == EXPECTED
    policy = _directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == "'self'"  # no inline code, nothing from elsewhere
    assert (policy["default-src"], policy["object-src"], policy["frame-ancestors"]) == \
        ("'self'", "'none'", "'none'")
    assert "unsafe" not in answer.headers["content-security-policy"]
    https = client.base_url.scheme == "https"
    assert ("strict-transport-security" in answer.headers) == https


def test_a_refused_oversize_body_carries_them_too(client: TestClient) -> None:
    answer = client.post("/api/v1/auth/token", content=b"{}",
                         headers={"Content-Length": str(10**9)})
    assert answer.status_code == 413
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers


def test_the_docs_run_exactly_their_own_inline_script(client: TestClient) -> None:
    answer = client.get("/docs")
    assert answer.status_code == 200
    (script,) = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = _directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["img-src"] == "'self' data:"
    assert "unsafe" not in answer.headers["content-security-policy"]


def _cookie(answer: httpx.Response, name: str) -> str:
    (found,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
    return found


def test_session_and_csrf_cookies_are_http_only_same_site_and_secure_over_https(
        client: TestClient) -> None:
    client.cookies.clear()  # a new browser
    email = f"cookies-{client.base_url.scheme}@example.org"
    registered = client.post("/api/v1/auth/register", json={
        "email": email, "name": email.split("@")[0], "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    page = client.get("/login")
    csrf = _cookie(page, "dp_csrf")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "the login form carries no CSRF token"
    login = client.post("/login", data={"email": email, "password": PASSWORD,
                                        "csrf": token.group(1)}, follow_redirects=False)
    assert login.status_code == 303, login.text
    session = _cookie(login, "dp_session")
    https = client.base_url.scheme == "https"
    for cookie, same_site in ((csrf, "strict"), (session, "lax")):
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert f"samesite={same_site}" in flags
        assert ("secure" in flags) == https

