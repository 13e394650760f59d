"""An HTTP client for a DataPerf server (used by the CLI; usable from notebooks).

Credentials saved by ``dataperf login`` live in ``$DATAPERF_HOME/credentials.json`` (readable by
the owner only); ``DATAPERF_SERVER`` and ``DATAPERF_TOKEN`` override them.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from dataperf.exceptions import DataPerfError, Problem, SubmissionError
from dataperf.home import home

DEFAULT_SERVER = "http://127.0.0.1:8000"
RETRY_WAITS = (1.0, 3.0)  # seconds before the second and third try of a lost upload
RETRIED_STATUSES = {502, 503, 504}  # a proxy or a restarting server; the upload may be in
FINAL = {"scored", "failed_participant", "failed_platform", "cancelled"}


def poll_until(read: Callable[[], Any], final: set[str], *, poll: float, timeout: float,
               on_update: Callable[[Any], None] | None, late: Callable[[Any], str]) -> Any:
    """``read()`` every ``poll`` seconds until its ``state`` is one of ``final``; after
    ``timeout`` seconds, an error saying ``late(last read)``."""
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if on_update:
            on_update(found)
        if found["state"] in final:
            return found
        if time.monotonic() > deadline:
            raise DataPerfError(late(found))
        time.sleep(poll)


class ServerError(DataPerfError):
    """The server refused a request; the message is the server's."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def credentials_path() -> Path:
    return home() / "credentials.json"


def save_credentials(server: str, token: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"server": server, "token": token}, out)
    return path


def saved_credentials() -> tuple[str, str | None]:
    server, token = DEFAULT_SERVER, None
    path = credentials_path()
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            server, token = saved.get("server", server), saved.get("token")
        except (OSError, json.JSONDecodeError):
            pass
    return os.environ.get("DATAPERF_SERVER", server), os.environ.get("DATAPERF_TOKEN", token)


class Client:
    def __init__(self, server: str | None = None, token: str | None = None,
                 timeout: float = 120.0, transport: httpx.BaseTransport | None = None):
        saved_server, saved_token = saved_credentials()
        self.server = (server or saved_server).rstrip("/")
        self.token = token if token is not None else saved_token
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=f"{self.server}/api/v1", headers=headers,
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of an API call (errors raised as the server words them)."""
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def download(self, path: str, params: dict[str, str] | None = None) -> bytes:
        """The bytes of a GET (a file, an image)."""
        return self._send("GET", path, params=params).content

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        return self._checked(response)

    def _unreachable(self, err: Exception) -> DataPerfError:
        return DataPerfError(f"cannot reach the DataPerf server at {self.server}: {err}. "
                             "Is it running? (`dataperf serve`; or pass --server)")

    def _checked(self, response: httpx.Response) -> httpx.Response:
        """The response if it succeeded; else its error, raised as the server words it."""
        if response.is_success:
            return response
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise ServerError(response.status_code, "error",
                              f"the server answered {response.status_code}: "
                              f"{response.text[:300]}") from None
        if error.get("code") == "invalid-submission" and error.get("problems"):
            raise SubmissionError([Problem(p["file"], p["rule"], p["message"], p.get("line"),
                                           tuple(p.get("ids") or ()))
                                   for p in error["problems"]])
        raise ServerError(error["status"], error["code"], error["message"])

    # Accounts -------------------------------------------------------------------------------

    def register(self, email: str, name: str, password: str, team: str | None = None) -> Any:
        return self.request("POST", "/auth/register", json={
            "email": email, "name": name, "password": password, "team": team})

    def login(self, email: str, password: str, token_name: str = "cli") -> Any:
        return self.request("POST", "/auth/token", json={
            "email": email, "password": password, "token_name": token_name})

    def me(self) -> Any:
        return self.request("GET", "/me")

    # Participating --------------------------------------------------------------------------

    def challenge(self, name: str) -> Any:
        return self.request("GET", f"/challenges/{name}")

    def submit(self, challenge: str, files: Mapping[str, bytes], label: str = "",
               waits: tuple[float, ...] = RETRY_WAITS) -> Any:
        """Upload a submission. A lost answer (the connection broke, the server restarted) is
        retried with the same idempotency key, after each of ``waits``: the server then
        answers with the submission the first try made, so none is made (or charged) twice."""
        uploads = [("files", (name, data, "application/octet-stream"))
                   for name, data in sorted(files.items())]
        key = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}

        def post() -> httpx.Response:
            return self._http.post(f"/challenges/{challenge}/submissions", files=uploads,
                                   data={"label": label}, headers=key)

        for wait in waits:
            try:
                response = post()
                if response.status_code not in RETRIED_STATUSES:
                    return self._checked(response).json()
            except httpx.TransportError:
                pass
            time.sleep(wait)
        try:  # the last try: its failure is the answer
            return self._checked(post()).json()
        except httpx.TransportError as err:
            raise self._unreachable(err) from None

    def submission(self, submission_id: int) -> Any:
        return self.request("GET", f"/submissions/{submission_id}")

    def submission_file(self, submission_id: int, name: str) -> bytes:
        return self.download(f"/submissions/{submission_id}/files", {"name": name})

    def submissions(self, challenge: str | None = None) -> Any:
        return self.request("GET", "/submissions",
                            params={"challenge": challenge} if challenge else None)

    def cancel(self, submission_id: int) -> Any:
        return self.request("POST", f"/submissions/{submission_id}/cancel")

    def wait(self, submission_id: int, *, poll: float = 1.0, timeout: float = 3600.0,
             on_update: Callable[[Any], None] | None = None) -> Any:
        """Poll until the evaluation ends; ``on_update`` sees every state read."""
        return poll_until(lambda: self.submission(submission_id), FINAL, poll=poll,
                          timeout=timeout, on_update=on_update,
                          late=lambda found: f"submission {submission_id} is still "
                          f"{found['state']} after {timeout:.0f} s; check later with "
                          f"`dataperf status {submission_id}`")

    def download_public(self, challenge: str) -> bytes:
        """The hosted challenge's public data as .tar.gz bytes."""
        try:
            response = self._http.get(f"/challenges/{challenge}/public-data")
        except httpx.HTTPError as err:
            raise DataPerfError(f"cannot reach the DataPerf server at {self.server}: {err}"
                                ) from None
        if not response.is_success:
            self.request("GET", f"/challenges/{challenge}")  # raises the server's message
            raise ServerError(response.status_code, "error", response.text[:300])
        return response.content

    def leaderboard(self, challenge: str, **params: Any) -> Any:
        return self.request("GET", f"/challenges/{challenge}/leaderboard",
                            params={k: v for k, v in params.items() if v is not None})

    def quota(self, challenge: str) -> Any:
        return self.request("GET", f"/challenges/{challenge}/quota")

    # Organizing -----------------------------------------------------------------------------

    def upload_edition(self, directory: Path) -> Any:
        """Pack an edition folder as .tar.gz in memory and upload it."""
        if not (directory / "manifest.json").is_file():
            raise DataPerfError(f"{directory} is not an edition folder (no manifest.json)")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(directory, arcname=directory.name)
        files = {"file": (f"{directory.name}.tar.gz", buffer.getvalue(), "application/gzip")}
        return self.request("POST", "/editions", files=files)

    def host(self, challenge: str, edition: str, *, name: str | None = None,
             round_settings: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", "/challenges", json={
            "challenge": challenge, "edition": edition, "name": name,
            "round": dict(round_settings or {})})

    def open_round(self, challenge: str, settings: Mapping[str, Any]) -> Any:
        return self.request("POST", f"/challenges/{challenge}/rounds", json=dict(settings))

    def edit_round(self, challenge: str, number: int, settings: Mapping[str, Any]) -> Any:
        return self.request("PATCH", f"/challenges/{challenge}/rounds/{number}",
                            json=dict(settings))

    def snapshot(self, challenge: str, name: str) -> Any:
        return self.request("POST", f"/challenges/{challenge}/snapshots", json={"name": name})
