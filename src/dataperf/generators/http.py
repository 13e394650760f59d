"""``http``: an image-generation service the operator runs, behind one small JSON contract.

The platform sends ``POST <url>`` with the JSON body ``{"prompt": str, "count": int, "seed": int}``
(and ``Authorization: Bearer <token>`` when a token is configured). The service answers:

* ``200`` and ``{"model": str, "images": [...]}`` with ``count`` items, each ``{"png": <base64
  PNG, JPEG or WebP>}`` or ``{"blocked": <reason>}``; an item may carry its own ``"model"``
  (a service that draws several models), otherwise the top-level one, otherwise the configured one;
* ``4xx`` and ``{"error": <message>}``: the request is refused; the participant reads the message;
* anything else (``429``, ``5xx``, no answer within ``timeout`` seconds, a broken connection) is
  retried ``retries`` times, waiting ``backoff`` seconds and then twice as long each time, before
  the participant is told, in plain words, that the service is unavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import httpx

from dataperf.exceptions import DataPerfError
from dataperf.generators import GeneratedImage, GenerationError, Generator, check_model_name
from dataperf.screening import open_image

#: Largest answer accepted, in bytes (12 large images in base64).
MAX_ANSWER = 64 * 1024 * 1024
RETRIED = {408, 425, 429, 500, 502, 503, 504}


class HTTPGenerator(Generator):
    """Images from the service at ``url``; ``model`` names it where the service does not."""

    def __init__(
        self,
        *,
        url: str,
        model: str = "http",
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 1.0,
    ):
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise GenerationError(f"the image service URL must be http(s)://host/..., not {url!r}")
        if not timeout > 0 or not isinstance(retries, int) or retries < 0 or backoff < 0:
            raise GenerationError("timeout must be positive, retries and backoff at least 0")
        self.url, self.token = url, token
        self.model = check_model_name(model, "the configured model name")
        self.timeout, self.retries, self.backoff = float(timeout), retries, float(backoff)

    def _generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        answer = self._post({"prompt": prompt, "count": count, "seed": seed})
        items = answer.get("images") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise self._broken("its answer has no list of images")
        default = answer.get("model", self.model)
        return [self._item(item, default, index) for index, item in enumerate(items)]

    def _post(self, body: dict[str, Any]) -> Any:
        wait = self.backoff
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait)
                wait *= 2
            try:
                status, content = self._send(body)
            except httpx.TimeoutException:
                problem = f"it did not answer within {self.timeout:g} s"
                continue
            except httpx.TransportError as err:
                problem = f"it could not be reached ({type(err).__name__})"
                continue
            if status in RETRIED:
                problem = f"it answered HTTP {status}"
                continue
            if 400 <= status < 500:
                raise GenerationError(f"the image service refused the prompt: "
                                      f"{_message(content, status)}")
            if status != 200:
                raise self._broken(f"it answered HTTP {status}")
            try:
                return json.loads(content)
            except ValueError:
                raise self._broken("its answer is not JSON") from None
        tries = "1 try" if self.retries == 0 else f"{self.retries + 1} tries"
        raise GenerationError(
            f"the image service is unavailable: {problem} ({tries}); "
            "please try again in a few minutes"
        )

    def _send(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """One request: the status and the body, read up to :data:`MAX_ANSWER` bytes."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with httpx.stream("POST", self.url, json=body, headers=headers,
                          timeout=self.timeout) as response:
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > MAX_ANSWER:
                    raise self._broken(f"its answer is over {MAX_ANSWER // 2**20} MB")
            return response.status_code, bytes(content)

    def _item(self, item: Any, default: Any, index: int) -> GeneratedImage:
        if not isinstance(item, dict):
            raise self._broken(f"image {index} is not an object")
        try:
            model = check_model_name(item.get("model", default), f"image {index}'s model")
        except GenerationError as err:
            raise self._broken(str(err)) from None
        if isinstance(item.get("blocked"), str) and "png" not in item:
            return self.blocked(item["blocked"].strip()[:300] or "blocked by the service",
                                model=model)
        if not isinstance(item.get("png"), str):
            raise self._broken(f"image {index} has neither a 'png' nor a 'blocked' text")
        try:
            data = base64.b64decode(item["png"], validate=True)
            picture = open_image(data, f"image {index}")
        except (binascii.Error, ValueError):
            raise self._broken(f"image {index} is not base64") from None
        except DataPerfError as err:
            raise self._broken(str(err)) from None
        return self.image(picture, model=model)

    def _broken(self, what: str) -> GenerationError:
        return GenerationError(
            f"the image service answered something we cannot show ({what}); "
            "please tell the organizers"
        )


def _message(content: bytes, status: int) -> str:
    """The ``error`` text of a refusal, or its status."""
    try:
        message = json.loads(content).get("error")
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message.strip():
        return f"HTTP {status}"
    return message.strip()[:300]
