"""Security headers on every answer: a content security policy that runs no inline code and
loads nothing from elsewhere, no framing, no MIME sniffing, no referrer beyond this site, and
HSTS over HTTPS. A page that must run inline code (the API docs' Swagger UI set-up) gets a
policy that allows exactly that code, by its hash."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'",
    "img-src": "'self'", "connect-src": "'self'", "object-src": "'none'",
    "base-uri": "'none'", "form-action": "'self'", "frame-ancestors": "'none'",
}
FIXED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def policy(**changes: str) -> str:
    """The strict policy with some directives replaced (``script_src="..."``)."""
    directives = STRICT | {name.replace("_", "-"): value for name, value in changes.items()}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def allowing_inline_scripts(html: str, **changes: str) -> str:
    """A policy that runs exactly the inline scripts of ``html`` (by their SHA-256)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in _INLINE_SCRIPT.findall(html))
    return policy(script_src=f"'self' {hashes}", **changes)


class SecurityHeaders:
    """ASGI middleware: the fixed headers and a content security policy on every HTTP answer
    (``policies`` by exact path, the strict one elsewhere); an answer's own headers win."""

    def __init__(self, app: ASGIApp, policies: Mapping[str, str]) -> None:
        self.app = app
        self.policies = dict(policies)
        self.strict = policy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = FIXED | {"Content-Security-Policy":
                         self.policies.get(scope["path"], self.strict)}
        if scope.get("scheme") == "https":
            added["Strict-Transport-Security"] = HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
