"""The platform's automatic screening of red-teaming prompts and images: hints for people,
never a refusal or a block. A screener that is not installed, or that fails, leaves its inputs
unscreened, and the log says why."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Literal

from dataperf.screening import Screener, ScreeningError, image_screener, text_screener
from dataperf.server.settings import Settings

log = logging.getLogger("dataperf.screening")
Kind = Literal["prompts", "images"]


@functools.cache
def _screener(kind: Kind, name: str) -> Screener[Any] | None:
    """The named screener, made once per process (None when it cannot be made)."""
    try:
        return text_screener(name) if kind == "prompts" else image_screener(name)
    except ScreeningError as err:
        log.warning("%s are not screened: %s", kind, err)
        return None


def screen(kind: Kind, name: str | None, items: Sequence[Any]) -> list[dict[str, Any] | None]:
    """Each item's screening ({"screener", "unsafe", "flagged"}), or None for each without a
    screener (``name`` empty or unavailable) or when screening fails."""
    screener = _screener(kind, name) if name else None
    if screener is None or not items:
        return [None] * len(items)
    try:
        answers = screener.screen(list(items))
    except ScreeningError as err:
        log.warning("%s could not be screened: %s", kind, err)
        return [None] * len(items)
    return [{"screener": name, "unsafe": round(a.probability, 4), "flagged": a.flagged}
            for a in answers]


def screen_prompt(settings: Settings, text: str) -> dict[str, Any] | None:
    """The operator's text screener's answer for a prompt, or None without one."""
    return screen("prompts", settings.text_screener, [text])[0]


def screener_name(settings: Settings) -> str | None:
    """The text screener that screens prompts, if there is one that works."""
    name = settings.text_screener
    return name if name and _screener("prompts", name) is not None else None
