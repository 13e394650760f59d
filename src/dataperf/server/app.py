"""The web application: ``create_app(settings)`` gives a FastAPI app serving ``/api/v1``, its
OpenAPI schema and offline interactive docs; on start it migrates the database, hosts the
bundled challenges and starts the embedded evaluation workers."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataperf import __version__
from dataperf.exceptions import DataPerfError
from dataperf.server import hosting
from dataperf.server.api import (
    accounts,
    challenges,
    data,
    errors,
    organize,
    rating,
    studio,
    submissions,
)
from dataperf.server.api.schemas import ERROR_RESPONSES
from dataperf.server.db import Database
from dataperf.server.executors import LocalExecutor
from dataperf.server.headers import SecurityHeaders, allowing_inline_scripts
from dataperf.server.models import ChallengeRow
from dataperf.server.platform import Platform
from dataperf.server.settings import Settings
from dataperf.server.web import accounts as account_pages
from dataperf.server.web import organizing as organize_pages
from dataperf.server.web import pages
from dataperf.server.web import rating as rating_pages
from dataperf.server.web import studio as studio_pages
from dataperf.server.web import submitting as submit_pages
from dataperf.server.worker import start_in_thread

log = logging.getLogger("dataperf.server")
API = "/api/v1"
SMALL_BODY = 1024 * 1024  # JSON requests and forms
WEB_STATIC = Path(pages.__file__).with_name("static")


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit by their declared length, and stop
    streamed ones as soon as they pass it (uploads are never read whole before checking)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    def limit(self, path: str) -> int:
        if path == f"{API}/editions":
            return self.settings.max_edition_bytes
        if path.endswith(("/submissions", "/submit")):
            return self.settings.max_upload_bytes + SMALL_BODY
        if path == "/organize/challenges":
            return self.settings.max_edition_bytes
        return SMALL_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.limit(scope["path"])
        message = f"the request body is over the limit of {allowed:,} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > allowed):
            response = JSONResponse({"error": {"status": 413, "code": "too-large",
                                               "message": message}}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > allowed:
                raise HTTPException(413, message)
            return event

        await self.app(scope, counted, send)


def _parameters_storable(request: Request) -> None:
    """Path and query parameters the database could not even be asked about, on every route:
    text with a NUL character is invalid, and a number in a path beyond 32 bits names
    nothing the database holds (its ids are PostgreSQL integers), so it is not found."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(name) + str(value):
            raise RequestValidationError([{"loc": ("parameters", str(name).replace("\x00", "")),
                                           "msg": "must not contain a NUL character",
                                           "type": "value_error"}])
    for value in request.path_params.values():
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if not -2**31 <= number < 2**31:
            raise HTTPException(404, f"nothing has the number {str(value)[:40]}: numbers here "
                                "are below 2^31")


def _warm(platform: Platform) -> None:
    """Do at start what the first requests would: open every hosted challenge's definition,
    edition and description, importing the libraries they use. The start-up heap is then kept
    out of the garbage collector's sight (``gc.freeze``): a full collection of it holds the
    interpreter for 100 to 200 ms, a stall that every request in flight would wait out."""
    with platform.db.read() as session:
        rows = list(session.scalars(select(ChallengeRow)))
    for row in rows:
        try:
            platform.edition(row)
            challenges.described(platform, row)
        except DataPerfError as error:  # its pages report it; the others are served
            log.warning("%s cannot be opened: %s", row.name, error)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # The library finds organizer editions under $DATAPERF_HOME; make it this server's home.
    os.environ["DATAPERF_HOME"] = str(settings.home)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.sqlalchemy_url)

        def prepare() -> None:
            with db.startup_lock():  # replicas starting together take turns
                db.migrate()
                if settings.seed_bundled:
                    with db.write() as session:
                        for change in hosting.seed(session, settings):
                            log.info(change)

        db.when_reachable(prepare)
        app.state.platform = Platform(settings, db)
        _warm(app.state.platform)
        workers = [start_in_thread(db, settings, LocalExecutor(settings.workers))] \
            if settings.workers else []
        gc.freeze()  # see _warm
        try:
            yield
        finally:
            for thread, stop in workers:
                stop.set()
                thread.join(30)
            db.dispose()

    app = FastAPI(title="DataPerf", version=__version__, lifespan=lifespan,
                  dependencies=[Depends(_parameters_storable)],
                  docs_url=None, redoc_url=None, openapi_url=f"{API}/openapi.json",
                  description="Benchmarks for data: submit training sets, cleaning orders and "
                              "data purchases; get them scored on hidden test data.")
    errors.install(app, lambda request, status, message:
                   pages.error_page(request, None, status, message))
    app.add_middleware(BodyLimit, settings=settings)
    docs = _docs_page()
    app.add_middleware(SecurityHeaders, policies={  # Swagger UI draws icons from data: URLs
        "/docs": allowing_inline_scripts(docs, img_src="'self' data:")})
    api = APIRouter(prefix=API, responses=ERROR_RESPONSES)
    api.add_api_route("/health", _health, methods=["GET"], tags=["platform"],
                      summary="Liveness and database reachability",
                      responses={503: {"description": "the database is unreachable"}})
    for module in (accounts, challenges, data, submissions, organize, studio, rating):
        api.include_router(module.router)
    app.include_router(api)
    for area in (pages, account_pages, submit_pages, organize_pages):
        app.include_router(area.router)
    app.include_router(studio_pages.router)
    app.include_router(rating_pages.router)
    app.mount("/static/web", StaticFiles(directory=str(WEB_STATIC)), name="web-static")
    app.add_api_route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False)
    _mount_docs(app, docs)
    return app


def _favicon() -> FileResponse:
    """The site's icon, for clients that ask for it by its customary name."""
    return FileResponse(WEB_STATIC / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


def _health(request: Request) -> JSONResponse:
    platform: Platform = request.app.state.platform
    try:
        with platform.db.read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        return JSONResponse({"status": "unavailable", "version": __version__,
                             "database": f"unreachable: {type(err).__name__}"}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "database": "ok"})


def _docs_page() -> str:
    """The interactive docs' page: Swagger UI 5 from the installed ``swagger-ui-bundle-v2``
    package, so it works offline."""
    return bytes(get_swagger_ui_html(
        openapi_url=f"{API}/openapi.json", title="DataPerf API",
        swagger_js_url="/static/swagger/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger/swagger-ui.css",
        swagger_favicon_url="/static/swagger/favicon-32x32.png").body).decode()


def _mount_docs(app: FastAPI, page: str) -> None:
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)
