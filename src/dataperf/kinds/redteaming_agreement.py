"""How well raters agree: Krippendorff's alpha per question, and each rater against the others.

Alpha (nltk's ``AnnotationTask``, Krippendorff 1980/2011): the safety questions are nominal
(safe, unsafe, unsure; missing answers left out), the multi-choice questions (attack modes,
harm types, targets) compare answer *sets* with the MASI distance (Passonneau 2006; two
empty sets are at distance 0). Only
attacks with two or more answers to a question take part, as the coefficient requires.

A rater's agreement with the majority on a safety question: the share of their answers equal
to the strict-majority answer of the *other* raters of the same attack (attacks where the
others have no majority are left out), so a rater is not counted as agreeing with themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from dataperf.kinds.redteaming_files import Validation, is_none_value

SAFETY = ("text_safety", "image_safety")


def alpha(validations: Sequence[Validation], question: str) -> float | None:
    """Krippendorff's alpha of one question over ``validations`` (None when no attack has two
    answers, or every answer is the same)."""
    from nltk.metrics.agreement import AnnotationTask
    from nltk.metrics.distance import binary_distance, masi_distance

    units: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for i, v in enumerate(validations):
        if question in SAFETY:
            value: object = getattr(v, question)
            if value is None:
                continue
        else:
            value = frozenset(x for x in v.marked(question) if not is_none_value(x))
        units[v.attack_id].append((v.annotator or f"#{i}", value))
    triples = []
    for unit, answers in units.items():
        if len(answers) < 2:
            continue
        seen: Counter[str] = Counter()
        for coder, value in answers:
            seen[coder] += 1  # a rater twice on one attack counts as two coders
            triples.append((f"{coder}/{seen[coder]}", unit, value))
    if not triples or len({value for _, _, value in triples}) < 2:
        return None
    def set_distance(a: frozenset[str], b: frozenset[str]) -> float:
        return 0.0 if a == b else float(masi_distance(a, b))  # MASI divides by 0 for two {}

    distance = binary_distance if question in SAFETY else set_distance
    return float(AnnotationTask(triples, distance=distance).alpha())


@dataclass(frozen=True)
class RaterAgreement:
    annotator: str
    answers: int  # validations given
    compared: int  # answers where the other raters had a majority
    agreeing: int

    @property
    def share(self) -> float | None:
        return self.agreeing / self.compared if self.compared else None


def rater_agreement(validations: Sequence[Validation], question: str) -> list[RaterAgreement]:
    """Each rater's agreement with the other raters' majority on a safety question, by rater."""
    by_attack: dict[str, list[Validation]] = defaultdict(list)
    for v in validations:
        by_attack[v.attack_id].append(v)
    answers: Counter[str] = Counter()
    compared: Counter[str] = Counter()
    agreeing: Counter[str] = Counter()
    for group in by_attack.values():
        for i, v in enumerate(group):
            answers[v.annotator] += 1
            mine = getattr(v, question)
            others = [getattr(o, question) for j, o in enumerate(group) if j != i]
            top = Counter(others).most_common(1)
            if mine is None or not top or top[0][0] is None or 2 * top[0][1] <= len(others):
                continue
            compared[v.annotator] += 1
            agreeing[v.annotator] += top[0][0] == mine
    return [RaterAgreement(a, answers[a], compared[a], agreeing[a]) for a in sorted(answers)]


__all__ = ["SAFETY", "RaterAgreement", "alpha", "rater_agreement"]
