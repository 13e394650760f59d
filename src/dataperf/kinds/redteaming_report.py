"""The results page of a red-teaming edition: every round replayed from its validations.

For each round: its statistics (examples, submitters, validations per example, raters,
agreement per question, annotations claimed and confirmed, how much the fooling rule moves the
rate) and every submitter's two scores; and how well an automatic text screener agrees with
the raters about which prompts are unsafe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dataperf.challenge import Progress, no_progress
from dataperf.editions import Edition
from dataperf.kinds.redteaming import (
    ParticipantScore,
    RedteamingChallenge,
    RedteamingSubmission,
)
from dataperf.kinds.redteaming_agreement import SAFETY, alpha, rater_agreement
from dataperf.kinds.redteaming_files import QUESTIONS, Attack, Validation, is_none_value
from dataperf.kinds.redteaming_scores import (
    COMPONENTS,
    FOOLING_RULES,
    UNSAFE,
    Answers,
    Counts,
    majority_label,
    prompt_key,
)

QUESTION_NAMES = {"text_safety": "text safety", "image_safety": "image safety",
                  "attack_modes": "attack modes", "harm_types": "harm types",
                  "targets": "targets"}
#: A text screener for the report: prompts -> probability unsafe, with its name.
TextScreener = tuple[str, Callable[[Sequence[str]], np.ndarray]]


@dataclass(frozen=True)
class RoundFacts:
    name: str
    attacks: list[Attack]
    validations: list[Validation]
    k: int
    attempts: int
    scores: list[ParticipantScore]
    answers: Answers  # the validations as arrays, and their counts per attack
    counts: Counts


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def collect(challenge: RedteamingChallenge, edition: Edition,
            progress: Progress = no_progress) -> list[RoundFacts]:
    """Every round of the edition with its records and every submitter's scores."""
    attacks = challenge.edition_attacks(edition)
    validations = challenge.edition_validations(edition)
    k_of = challenge.round_validations(edition)
    attempts = Counter(edition.read_table("public/attempts.parquet").column("round").to_pylist())
    rounds = list(dict.fromkeys(a.round for a in attacks if a.round))
    facts = []
    for i, name in enumerate(rounds):
        progress(f"replaying {name}", i, len(rounds))
        members = [a for a in attacks if a.round == name]
        ids = {a.attack_id for a in members}
        rated = [v for v in validations if v.attack_id in ids]
        replay = RedteamingSubmission(challenge.name, {}, attacks=tuple(members))
        answers = Answers.of(members, rated, challenge.vocabularies(edition))
        counts = answers.counts(np.arange(len(answers.owner)), answers.owner, len(members))
        facts.append(RoundFacts(name, members, rated, k_of.get(name, challenge.spec.validations),
                                attempts[name], challenge.score_all(replay, edition), answers,
                                counts))
    progress("replaying", len(rounds), len(rounds))
    return facts


def _overview(rounds: list[RoundFacts]) -> list[str]:
    rows: dict[str, list[str]] = {label: [] for label in (
        "submitted examples", "submitters", "distinct prompts", "attempted prompts",
        "validations", "validations per example", "raters",
        "pending examples (fewer than k validations)", "prompt safe (raters' majority)",
        "image unsafe (raters' majority)", "fooled the model (rule majority)",
        "credited prompts, all submitters")}
    for facts in rounds:
        counts = facts.counts
        validated = counts.n >= facts.k
        text = majority_label(counts.text, counts.n)
        image = majority_label(counts.image, counts.n)
        fooled = FOOLING_RULES["majority"].fooled(counts) & validated
        sizes = Counter(counts.n.tolist())
        n = len(facts.attacks)
        rows["submitted examples"].append(f"{n:,}")
        rows["submitters"].append(str(len({a.submitter for a in facts.attacks})))
        rows["distinct prompts"].append(f"{len({prompt_key(a.prompt) for a in facts.attacks}):,}")
        rows["attempted prompts"].append(f"{facts.attempts:,}" if facts.attempts
                                         else "not released")
        rows["validations"].append(f"{len(facts.validations):,}")
        rows["validations per example"].append(
            ", ".join(f"{size}: {count:,}" for size, count in sorted(sizes.items(),
                                                                      reverse=True)))
        rows["raters"].append(str(len({v.annotator for v in facts.validations})))
        rows["pending examples (fewer than k validations)"].append(
            f"{int((~validated).sum())} (k = {facts.k})")
        rows["prompt safe (raters' majority)"].append(
            _percent(int((text[validated] == 0).sum()), int(validated.sum())))
        rows["image unsafe (raters' majority)"].append(
            _percent(int((image[validated] == UNSAFE).sum()), int(validated.sum())))
        rows["fooled the model (rule majority)"].append(
            f"{int(fooled.sum())} ({_percent(int(fooled.sum()), int(validated.sum()))})")
        rows["credited prompts, all submitters"].append(
            str(sum(int(s.result.fooling.value) for s in facts.scores)))
    return _table(["", *(r.name for r in rounds)], [[label, *cells]
                                                    for label, cells in rows.items()])


def _agreement(rounds: list[RoundFacts]) -> list[str]:
    rows = [[QUESTION_NAMES[q], *(_number(alpha(r.validations, q)) for r in rounds)]
            for q in (*SAFETY, *QUESTIONS)]
    lines = _table(["Krippendorff's alpha", *(r.name for r in rounds)], rows)
    lines += ["", "Each rater's agreement with the other raters' majority (median over raters "
              "[lowest, highest]; raters with fewer than 20 compared answers left out):", ""]
    rows = []
    for question in SAFETY:
        cells = []
        for r in rounds:
            shares = [a.share for a in rater_agreement(r.validations, question)
                      if a.compared >= 20 and a.share is not None]
            cells.append(f"{np.median(shares):.2f} [{min(shares):.2f}, {max(shares):.2f}]"
                         if shares else "-")
        rows.append([QUESTION_NAMES[question], *cells])
    return lines + _table(["question", *(r.name for r in rounds)], rows)


def _rules(rounds: list[RoundFacts], default_rule: str) -> list[str]:
    rows = []
    for name, rule in FOOLING_RULES.items():
        cells = []
        for facts in rounds:
            counts = facts.counts
            validated = counts.n >= facts.k
            fooled = rule.fooled(counts) & validated
            cells.append(_percent(int(fooled.sum()), int(validated.sum())))
        default = " (default)" if name == default_rule else ""
        rows.append([f"`{name}`{default}", *cells, rule.description])
    return _table(["rule", *(r.name for r in rounds), "an example fooled the model when"], rows)


def _annotations(rounds: list[RoundFacts], challenge: RedteamingChallenge,
                 edition: Edition) -> list[str]:
    vocabularies = challenge.vocabularies(edition)
    lines: list[str] = []
    for question in QUESTIONS:
        values = [v for v in vocabularies.values[question] if not is_none_value(v)]
        rows = []
        confirmed_by_round = []
        for facts in rounds:
            answers = facts.answers
            agreed = answers.majority_marks(question, np.arange(len(answers.owner)),
                                            answers.owner, len(facts.attacks),
                                            (1 << len(vocabularies.values[question])) - 1)
            confirmed_by_round.append((facts, agreed))
        for value in values:
            bit = 1 << vocabularies.values[question].index(value)
            cells = []
            for facts, agreed in confirmed_by_round:
                claimed = [value in a.claimed(question) for a in facts.attacks]
                confirmed = sum(c and bool(m & bit) for c, m in zip(claimed, agreed,
                                                                    strict=True))
                marked = int(((agreed & bit) > 0).sum())
                cells.append(f"{sum(claimed)} / {confirmed} / {marked}")
            rows.append([value.removeprefix(QUESTIONS[question]), *cells])
        lines += ["", f"**{QUESTION_NAMES[question]}**: examples where the participant named "
                  "the value / where a majority of raters also marked it (the value counts for "
                  "creativity) / where a majority of raters marked it", ""]
        lines += _table(["value", *(r.name for r in rounds)], rows)
    return lines


def _submitters(facts: RoundFacts) -> list[str]:
    rows = []
    ranked = sorted(facts.scores, key=lambda s: (-s.result.fooling.value,
                                                 -s.result.creativity.value,
                                                 s.result.participant))
    for item in ranked:
        r = item.result
        rows.append([
            r.participant, str(r.counts["attacks"]),
            f"{r.counts['validated_prompts']}/{r.counts['prompts']}",
            f"**{r.fooling.value:.0f}** [{r.fooling.low:.0f}, {r.fooling.high:.0f}]",
            f"{r.rate.value:.2f} [{r.rate.low:.2f}, {r.rate.high:.2f}]",
            f"**{r.creativity.value:.1f}** [{r.creativity.low:.1f}, {r.creativity.high:.1f}]",
            *(f"{r.components[c]:.2f}" for c in COMPONENTS),
        ])
    return _table(["submitter", "examples", "validated prompts", "fooling", "rate",
                   "creativity", *COMPONENTS], rows)


def _screening(rounds: list[RoundFacts], screener: TextScreener) -> list[str]:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    name, unsafe_probability = screener
    rows = []
    for facts in rounds:
        counts = facts.counts
        label = majority_label(counts.text, counts.n)
        labelled: dict[str, tuple[str, int]] = {}
        for attack, value in zip(facts.attacks, label.tolist(), strict=True):
            if value != 2:
                labelled.setdefault(prompt_key(attack.prompt), (attack.prompt, value))
        prompts = [p for p, _ in labelled.values()]
        truth = np.array([v == UNSAFE for _, v in labelled.values()])
        scores = np.asarray(unsafe_probability(prompts), dtype=np.float64)
        flagged = scores >= 0.5
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, flagged, average="binary", zero_division=0)
        auc = roc_auc_score(truth, scores) if 0 < truth.sum() < len(truth) else None
        rows.append([facts.name, f"{len(prompts):,}", _percent(int(truth.sum()), len(truth)),
                     f"{int(flagged.sum())}", _number(float(precision)), _number(float(recall)),
                     _number(float(f1)), _number(auc)])
    return [f"Screener `{name}` (flags a prompt at probability >= 0.5) against the raters' "
            "strict-majority text-safety label of each distinct submitted prompt (its first "
            "example with a majority; prompts "
            "without a majority left out; unsafe is the positive class):", "",
            *_table(["round", "prompts", "unsafe (raters)", "flagged", "precision", "recall",
                     "F1", "ROC AUC"], rows)]


def default_screener() -> tuple[TextScreener | None, str]:
    """The default text screener, or None and why it is not available."""
    from dataperf.screening import DEFAULT_TEXT_SCREENER, ScreeningError, text_screener

    try:
        screener = text_screener()
    except ScreeningError as error:
        return None, str(error)
    return (DEFAULT_TEXT_SCREENER, screener.probabilities), ""


def rounds_markdown(challenge: RedteamingChallenge, edition: Edition, *, command: str,
                    progress: Progress = no_progress) -> str:
    """The results page (markdown) of the edition's rounds, with the default text screener's
    agreement with the raters where it is installed."""
    rounds = collect(challenge, edition, progress)
    screener, screener_missing = default_screener()
    lines = [
        f"# Results: {challenge.title}", "",
        f"> **Content warning.** {challenge.spec.content_warning.strip()}", "",
        f"Every released round of the `{edition.name}` edition (content hash "
        f"`{edition.content_hash[:12]}`) replayed: each submitter's examples scored from "
        f"their released validations by `{challenge.scorer_version}` (rule "
        f"`{challenge.spec.rule}`; the definitions are in the user guide and in `dataperf "
        f"show {challenge.name}`; they are DataPerf's, the original challenge never published "
        "formulas). Submitters are the released data's anonymous ids. Generated by:", "",
        "```console", f"$ {command}", "```", "",
        "## The rounds", "", *_overview(rounds), "",
        "## Agreement between raters", "", *_agreement(rounds), "",
        "## How much the fooling rule moves the rate", "",
        "Share of validated examples that fooled the model, by the rule that decides it from "
        "the validations:", "", *_rules(rounds, challenge.spec.rule), "",
        "## Annotations, claimed and confirmed", "", *_annotations(rounds, challenge, edition),
        "",
    ]
    lines += ["## Automatic text screening", ""]
    if screener is not None:
        lines += _screening(rounds, screener)
    else:
        lines += [f"Not measured here: {screener_missing}"]
    for facts in rounds:
        lines += ["", f"## {facts.name}: every submitter", "",
                  "Sorted by the Model Fooling Score; validated prompts: prompts with every "
                  "validation / all prompts; [95% intervals].", "", *_submitters(facts)]
    return "\n".join(lines) + "\n"
