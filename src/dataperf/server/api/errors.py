"""Every error answer is JSON: ``{"error": {"status", "code", "message", "problems"}}``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dataperf.exceptions import (
    ChallengeNotFoundError,
    DataPerfError,
    HiddenDataUnavailableError,
    StorageUnavailableError,
    SubmissionError,
)

log = logging.getLogger("dataperf.server")
STORAGE_RETRY_SECONDS = 30  # what a refusal for unavailable storage tells clients to wait


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 problems: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not-found", f"{what} does not exist (or is not visible to you)")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def _answer(status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if problems is not None:
        body["problems"] = problems
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_HTTP_CODES = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 413: "too-large",
               415: "unsupported-media-type", 429: "too-many-requests"}


def storage_unavailable(err: StorageUnavailableError) -> ApiError:
    """The refusal of a request whose files the storage could not take (logged for the
    operator): 503, to be sent again later."""
    log.error("%s", err)
    return ApiError(503, "storage-unavailable", "the server cannot store files right now; "
                    "nothing was stored: send the same request again later",
                    headers={"Retry-After": str(STORAGE_RETRY_SECONDS)})


#: Renders an error for people (status, message) as a web page; the app passes the pages' one.
PageRenderer = Callable[[Request, int, str], Response]


def install(app: FastAPI, page: PageRenderer | None = None) -> None:
    """JSON answers for every error; outside ``/api/`` a missing page is rendered by ``page``."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, err: ApiError) -> JSONResponse:
        return _answer(err.status, err.code, err.message, err.problems, err.headers)

    @app.exception_handler(SubmissionError)
    async def _submission(_: Request, err: SubmissionError) -> JSONResponse:
        return _answer(422, "invalid-submission", str(err),
                       [asdict(p) | {"text": str(p)} for p in err.problems])

    @app.exception_handler(DataPerfError)
    async def _dataperf(_: Request, err: DataPerfError) -> JSONResponse:
        if isinstance(err, ChallengeNotFoundError):
            return _answer(404, "not-found", str(err))
        if isinstance(err, HiddenDataUnavailableError):
            return _answer(503, "hidden-data-unavailable", str(err))
        if isinstance(err, StorageUnavailableError):
            refusal = storage_unavailable(err)
            return _answer(refusal.status, refusal.code, refusal.message,
                           headers=refusal.headers)
        return _answer(400, "bad-request", str(err))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in err.errors()]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return _answer(422, "invalid-request", f"the request is invalid: {text}", problems)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, err: DataError) -> JSONResponse:
        """The database refused a value sent (a NUL character in text, a number past its
        columns' range) that no check caught before: the request's fault, not the server's."""
        return _answer(422, "invalid-value", "the request holds a value the database cannot "
                       f"store: {str(err.orig).splitlines()[0][:200]}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        if page is not None and not request.url.path.startswith("/api/") \
                and err.status_code == 404:
            return page(request, 404, f"there is no page at {request.url.path}")
        code = _HTTP_CODES.get(err.status_code, "error")
        return _answer(err.status_code, code, str(err.detail),
                       headers=dict(err.headers) if err.headers else None)
