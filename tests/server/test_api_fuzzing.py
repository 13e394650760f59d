"""Every API route fuzzed from the live OpenAPI schema (Schemathesis), on SQLite and PostgreSQL:
no request gets a server error (5xx), and every answer conforms to the schema (its status code,
content type, headers and body are documented).

Each generated request is sent as four callers (anonymous, a participant, the organizer owning
a hosted challenge, an admin) and again with its path parameters set to things that exist
(a hosted challenge, the participant's submission and its file, a prompt), so that requests
get past "not found" into the routes' logic. ``DATAPERF_FUZZ_EXAMPLES`` (default 8, the same
requests every run) sets the requests generated per route: ``make fuzz`` draws 200 afresh.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from dataperf.registry import get_challenge
from platform_harness import BACKENDS, LiveServer, database_url, fast_settings, live_server

pytestmark = pytest.mark.slow
# The tests' short run is the same every time; a longer one (make fuzz) draws afresh.
EXAMPLES = int(os.environ.get("DATAPERF_FUZZ_EXAMPLES", "8"))
SAME_EVERY_TIME = "DATAPERF_FUZZ_EXAMPLES" not in os.environ
COPY = "fuzz-copy"  # vision selection, hosted by the organizer
NIBBLER = "fuzz-nibbler"  # red-teaming, hosted by the organizer
# Routes under /challenges/{name}/ that only a red-teaming challenge has, by a path segment
RED_TEAMING = {"studio", "consent", "generations", "uploads", "attacks", "raters", "ratings",
               "review", "export", "images"}
# Not checked: a schema cannot say what this API also refuses (names of printable text only).
UNCHECKED = [positive_data_acceptance]


@dataclass
class FuzzWorld:
    server: LiveServer
    tokens: dict[str, str | None]
    known: dict[str, Any] = field(default_factory=dict)  # path parameters of things that exist

    def realistic(self, template: str, path: dict[str, Any]) -> dict[str, Any]:
        """``path`` with every parameter that names something set to a thing that exists."""
        segments = set(template.split("/"))
        found = self.known | {"name": NIBBLER if segments & RED_TEAMING else COPY}
        return {key: found.get(key, value) for key, value in path.items()}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzWorld]:
    """A server without workers, a challenge of each sort hosted by an organizer, a
    participant's submission to one and prompt in the other."""
    root: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with database_url(request.param, root) as url, \
            live_server(fast_settings(root / "home", url, workers=0)) as server:
        tokens: dict[str, str | None] = {"anonymous": None}
        for role in ("participant", "organizer", "admin"):
            tokens[role] = server.user(f"{role}@fuzz.example.org", role)
        world = FuzzWorld(server, tokens)
        with server.api(tokens["organizer"]) as api:
            api.post("/challenges", json={"challenge": "vision-selection", "name": COPY,
                                          "round": {"daily_quota": 10_000}}).raise_for_status()
            api.post(f"/challenges/{COPY}/snapshots", json={"name": "fuzz-snap"}
                     ).raise_for_status()
        server.host("adversarial-nibbler", NIBBLER, owner_email="organizer@fuzz.example.org")
        challenge = get_challenge("vision-selection")
        files = challenge.run_algorithm("random", challenge.edition("offline"), random_state=1)
        with server.api(tokens["participant"]) as api:
            me = api.get("/me").json()
            submitted = api.post(f"/challenges/{COPY}/submissions", data={"label": "fuzz"},
                                 files=[("files", (n, d, "text/csv")) for n, d in files.items()])
            submitted.raise_for_status()
            api.post(f"/challenges/{NIBBLER}/consent").raise_for_status()
            prompt = api.post(f"/challenges/{NIBBLER}/generations",
                              json={"prompt": "a lantern by the river"})
            prompt.raise_for_status()
        world.known = {"submission_id": submitted.json()["id"], "file_name": sorted(files)[0],
                       "user_id": me["id"], "number": 1, "snapshot": "fuzz-snap",
                       "generation_id": prompt.json()["id"], "index": 0}
        yield world


def api_operations() -> dict[str, Any]:
    """The API's operations by label ("GET /api/v1/me"), from the app's schema (no server)."""
    from dataperf.server.app import create_app
    from dataperf.server.settings import Settings

    saved = os.environ.get("DATAPERF_HOME")  # create_app sets it
    try:
        spec = create_app(Settings(home=Path("unused-home"))).openapi()
    finally:
        os.environ.pop("DATAPERF_HOME", None)
        if saved is not None:
            os.environ["DATAPERF_HOME"] = saved
    found = (result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations())
    return {operation.label: operation for operation in found}


OPERATIONS = api_operations()


def test_the_served_schema_is_the_one_fuzzed(world: FuzzWorld) -> None:
    with world.server.api() as api:
        served = api.get("/openapi.json").json()
    assert {f"{method.upper()} {path}" for path, item in served["paths"].items()
            for method in item} == set(OPERATIONS)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=SAME_EVERY_TIME,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_request_gets_a_server_error_or_an_answer_off_the_schema(
        world: FuzzWorld, label: str, data: st.DataObject) -> None:
    case = data.draw(OPERATIONS[label].as_strategy())
    generated = dict(case.path_parameters or {})
    realistic = world.realistic(case.path, generated)
    for path in ([generated, realistic] if realistic != generated else [generated]):
        case.path_parameters = path
        for token in world.tokens.values():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            case.call_and_validate(base_url=world.server.url, headers=headers,
                                   excluded_checks=UNCHECKED, timeout=60)
