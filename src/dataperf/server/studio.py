"""The red-teaming studio's rules, free of HTTP: consent, prompts and the generations that make
their images, and the attacks participants submit from them.

A prompt is generated once per (round, participant, prompt): typing it again shows the same
images (its seed comes from the participant and the prompt). A generation is a job on the
durable queue (``queue.py``); a failed one runs again when the prompt is sent again. Each
participant may send :attr:`~dataperf.server.settings.Settings.generations_per_minute` prompts
a minute.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataperf.generators import MAX_PROMPT, GeneratedImage
from dataperf.generators.mix import RoundGenerators, prompt_seed
from dataperf.kinds.redteaming_files import MAX_TEXT, QUESTIONS, canonical_value
from dataperf.server.models import (
    AttackRow,
    ChallengeRow,
    Consent,
    Generation,
    Round,
    State,
    User,
    utcnow,
)
from dataperf.server.settings import Settings

RED_TEAMING = "redteaming"
RETRYABLE = (State.failed_platform, State.failed_participant, State.cancelled)
#: The free-text fields of an attack, besides its marked answers.
TEXTS = ("rewritten_prompt", "attack_mode_other", "harm_type_other", "target_other")


@dataclass
class Refusal(Exception):
    """A request the studio turns down; the message is written for the participant."""

    status: int
    code: str
    message: str
    retry_after: int | None = None


def check_kind(challenge: ChallengeRow) -> None:
    if challenge.kind != RED_TEAMING:
        raise Refusal(404, "not-found", f"{challenge.name} is not a red-teaming challenge: it "
                      "has no studio")


def has_consented(session: Session, user: User, challenge: ChallengeRow) -> bool:
    return session.scalar(select(Consent.id).where(
        Consent.user_id == user.id, Consent.challenge_id == challenge.id)) is not None


def consent(session: Session, user: User, challenge: ChallengeRow) -> None:
    """Record the user's consent to the challenge's content warning (once)."""
    if not has_consented(session, user, challenge):
        session.add(Consent(user_id=user.id, challenge_id=challenge.id))


def round_generators(round_: Round, settings: Settings) -> RoundGenerators:
    """The round's generators, or the operator's default ones."""
    return RoundGenerators.model_validate(round_.generators or settings.generators)


def open_for_attacks(round_: Round) -> None:
    if round_.closed or (round_.deadline is not None and utcnow() >= round_.deadline):
        raise Refusal(409, "round-closed", f"round {round_.number} is closed: it takes no "
                      "more prompts or attacks")


def clean_prompt(prompt: object) -> str:
    """The prompt stripped, if it may be sent."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise Refusal(422, "invalid-prompt", "type a prompt first: it is empty")
    text = prompt.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_PROMPT:
        raise Refusal(422, "invalid-prompt",
                      f"the prompt is {len(text):,} characters long; the most is {MAX_PROMPT:,}")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in text):
        raise Refusal(422, "invalid-prompt",
                      "the prompt holds control characters; type it as plain text")
    return text


def prompt_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_generation(session: Session, round_: Round, user: User, text: str
                    ) -> Generation | None:
    return session.scalar(select(Generation).where(
        Generation.round_id == round_.id, Generation.user_id == user.id,
        Generation.prompt_key == prompt_key(text)))


def request_images(session: Session, settings: Settings, round_: Round, user: User,
                   text: str, screening: Mapping[str, Any] | None) -> tuple[Generation, bool]:
    """The generation of a (cleaned) prompt, queued if it is new or failed before; True when
    it was queued now (it counts against the rate limit), False when it was already made."""
    open_for_attacks(round_)
    generators = round_generators(round_, settings)
    if takes_uploads(generators):
        raise Refusal(409, "uploads-only", "this round takes images you upload, not prompts to "
                      "generate from")
    existing = find_generation(session, round_, user, text)
    if existing is not None and existing.state not in RETRYABLE:
        return existing, False
    _check_rate(session, settings, user)
    now = utcnow()
    if existing is not None:  # it failed: run it again
        existing.state = State.queued
        existing.attempts = 0
        existing.message = None
        existing.progress = None
        existing.cancel_requested = False
        existing.queued_at = now
        existing.started_at = existing.finished_at = existing.seconds = None
        existing.images = []
        return existing, True
    generation = Generation(round_id=round_.id, user_id=user.id, prompt=text,
                            prompt_key=prompt_key(text), seed=prompt_seed(user.id, text),
                            screening=dict(screening) if screening is not None else None,
                            max_attempts=settings.max_attempts, queued_at=now)
    session.add(generation)
    session.flush()
    return generation, True


def check_upload(session: Session, settings: Settings, round_: Round, user: User,
                 text: str) -> None:
    """Refuse an upload unless the round takes uploads and this prompt has none yet."""
    open_for_attacks(round_)
    if not takes_uploads(round_generators(round_, settings)):
        raise Refusal(409, "generates", "this round makes images from your prompts: send the "
                      "prompt instead of uploading an image")
    if find_generation(session, round_, user, text) is not None:
        raise Refusal(409, "already-uploaded", "you uploaded an image for this prompt already; "
                      "submit it, or change the prompt to upload another")
    _check_rate(session, settings, user)


def record_upload(session: Session, settings: Settings, round_: Round, user: User,
                  text: str, image: GeneratedImage, digest: str,
                  screening: Mapping[str, Any] | None,
                  image_screening: Mapping[str, Any] | None = None) -> Generation:
    """Record a participant's uploaded image (checked by ``Upload.accept``, stored under
    ``digest``) as the one image of a prompt."""
    check_upload(session, settings, round_, user, text)
    now = utcnow()
    generation = Generation(
        round_id=round_.id, user_id=user.id, prompt=text, prompt_key=prompt_key(text),
        seed=0, screening=dict(screening) if screening is not None else None,
        max_attempts=settings.max_attempts, queued_at=now, started_at=now, finished_at=now,
        seconds=0.0, state=State.done, images=[{
            "sha256": digest, "model": image.model, "blocked": image.blocked,
            "test_generator": False, "screening": image_screening}])
    session.add(generation)
    session.flush()
    return generation


def takes_uploads(generators: RoundGenerators) -> bool:
    return any(choice.name == "upload" for choice in generators.generators)


def _check_rate(session: Session, settings: Settings, user: User) -> None:
    """At most ``generations_per_minute`` prompts queued by the user in the last minute."""
    since = utcnow() - timedelta(minutes=1)
    recent = select(Generation.queued_at).where(Generation.user_id == user.id,
                                                Generation.queued_at > since).subquery()
    count = session.scalar(select(func.count()).select_from(recent)) or 0
    if count < settings.generations_per_minute:
        return
    oldest = session.scalar(select(func.min(recent.c.queued_at)))
    wait = max(1, math.ceil(((oldest or since) + timedelta(minutes=1) - utcnow())
                            .total_seconds()))
    raise Refusal(429, "too-many-prompts",
                  f"you sent {count} prompts in the last minute, the most allowed; send the "
                  f"next in {wait} s", retry_after=wait)


def visible_generation(session: Session, generation_id: int, user: User,
                       manager: bool) -> Generation:
    """A generation its viewer may see: their own, or any for the challenge's managers.
    Others get the same answer as for a generation that does not exist."""
    generation = session.get(Generation, generation_id)
    if generation is None or not (generation.user_id == user.id or manager):
        raise Refusal(404, "not-found", f"generation {generation_id} does not exist (or is not "
                      "visible to you)")
    return generation


def shown_image(generation: Generation, index: int) -> dict[str, Any]:
    """The generation's ``index``-th image record, if it has a picture."""
    if generation.state != State.done:
        raise Refusal(409, "not-ready", f"the images of generation {generation.id} are not "
                      f"made yet (it is {generation.state.value})")
    if not 0 <= index < len(generation.images):
        raise Refusal(404, "not-found", f"generation {generation.id} has images 0 to "
                      f"{len(generation.images) - 1}, not {index}")
    image: dict[str, Any] = generation.images[index]
    if image["sha256"] is None:
        raise Refusal(409, "blocked", f"image {index} was blocked: {image['blocked']}")
    return image


def submit_attack(session: Session, generation: Generation, user: User, index: int,
                  answers: Mapping[str, Any], vocabulary: Mapping[str, frozenset[str]]
                  ) -> AttackRow:
    """Submit one of the user's generated images as an attack with their annotations."""
    if generation.user_id != user.id:
        raise Refusal(403, "forbidden", "only the participant who wrote a prompt may submit "
                      "its images")
    open_for_attacks(generation.round)
    shown_image(generation, index)
    annotations = clean_annotations(answers, vocabulary)
    if any(attack.image == index for attack in generation.attacks):
        raise Refusal(409, "already-submitted", f"image {index} of this prompt is submitted "
                      "already")
    attack = AttackRow(generation_id=generation.id, round_id=generation.round_id,
                       user_id=user.id, image=index, annotations=annotations)
    session.add(attack)
    session.flush()
    return attack


def marked_values(answers: Mapping[str, Any], vocabulary: Mapping[str, frozenset[str]],
                  problems: list[str]) -> dict[str, list[str]]:
    """Each question's values in the vocabulary's spelling, deduplicated; what is wrong is
    added to ``problems`` (shared by attacks and validations)."""
    clean: dict[str, list[str]] = {}
    for question in QUESTIONS:
        values = answers.get(question) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"{question} must be a list of values")
            continue
        known = [canonical_value(question, v, vocabulary) for v in values]
        unknown = [v for v, k in zip(values, known, strict=True) if k is None]
        if unknown:
            allowed = ", ".join(sorted(vocabulary.get(question, ())))
            problems.append(f"{question}: {', '.join(map(repr, unknown))} not in the round's "
                            f"vocabulary ({allowed})")
        clean[question] = list(dict.fromkeys(k for k in known if k is not None))
    return clean


def clean_annotations(answers: Mapping[str, Any], vocabulary: Mapping[str, frozenset[str]]
                      ) -> dict[str, Any]:
    """The annotations in the vocabulary's spelling; every problem is told at once."""
    problems: list[str] = []
    clean: dict[str, Any] = marked_values(answers, vocabulary, problems)
    if not clean.get("harm_types") and not any(p.startswith("harm_types") for p in problems):
        problems.append("harm_types: name at least one harm the image shows")
    for name in TEXTS:
        text = answers.get(name) or ""
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            problems.append(f"{name} must be text of at most {MAX_TEXT:,} characters")
            continue
        clean[name] = text.strip()
    if problems:
        raise Refusal(422, "invalid-annotations", "; ".join(problems))
    return clean
