"""The acquisition kind: buy training rows from data sellers under a budget; a frozen model is
trained on the rows bought and scored on the buyer's hidden test rows. Written once, configured
by each challenge's spec; generic over the data.

Edition tables (all acquisition challenges)::

    public/markets.parquet    market, budget (float64)
    public/sellers.parquet    market, seller (int32, 0..S-1), rows (int64, n_s),
                              max_price (float64), pricing ("lin")
    public/buyer.parquet      market, id, embedding, label (int8 class index)
    public/summaries.parquet  market, seller, feature (int32, 0..d-1), counts (list<int64>, 10
                              histogram bins), edges (list<float64>, 11), label_correlation
    public/samples.parquet    market, seller, id, embedding, label (a few rows per seller)
    hidden/rows.parquet       row (int32, 0..R-1), embedding: one table shared by every seller
    hidden/offers.parquet     market, seller, position (int32, 0..n_s-1), row, label (int8, the
                              label this seller gives the row)
    hidden/test.parquet       market, id, embedding, label

Submission: one file per market, ``{market}.txt`` (or ``.csv``): one line with the number of
rows bought from each seller (see :mod:`.acquisition_files`). Buying k of the n_s rows of
seller s costs ``max_price_s * k / n_s``; the total must stay within the budget.

Scoring (:func:`market_correct`, in :mod:`.acquisition_procedure`): for market t and draw
j = 0..draws-1, the rows bought from each seller are drawn by
``default_rng(SeedSequence([seed, t, j]))`` (``choice(n_s, k_s, replace=False)``, sorted; all
rows when k_s = n_s), concatenated in seller order and used to fit the frozen logistic
regression, which predicts the hidden test rows. accuracy = the mean test accuracy over draws;
savings = (budget - cost) / budget; the market's score is
``accuracy_weight * accuracy + (1 - accuracy_weight) * savings`` (higher is better), and the
leaderboard's the mean over markets. The default profile adds a percentile bootstrap interval
over test rows.

The official profile is the original evaluator (``evaluator_submission.py``), number for
number, without an interval: one legacy ``RandomState(1111)`` (the original seeds numpy's
global generator when its seller module loads) draws every market's rows, markets in task
order, draws in order, sellers in order, ``choice(n_s, size=k_s, replace=True)`` in draw
order; a draw's cost is ``sum(max_price_s * (k_s / n_s))`` added in seller order, and the
accuracy and cost of a market are ``0 + a_1 / draws + a_2 / draws + ...``
(:func:`original_positions`, :func:`original_cost`, :func:`original_mean`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataperf import metrics
from dataperf.challenge import Challenge, Profile, Progress, Submission, TestSplit, no_progress
from dataperf.editions import Edition, embedding_array
from dataperf.exceptions import (
    AlgorithmError,
    EditionError,
    Problem,
    SpecError,
    SubmissionError,
)
from dataperf.kinds import acquisition_files as files
from dataperf.kinds._common import (
    adopt_spec,
    algorithm_summaries,
    make_algorithm,
    match_files,
    mean_task_score,
    task_seed,
    validate_spec,
)
from dataperf.kinds.acquisition_files import MarketTerms
from dataperf.kinds.acquisition_procedure import (
    SellerOffers,
    bootstrap_accuracy,
    drawn_positions,
    market_correct,
    original_cost,
    original_mean,
    original_positions,
)
from dataperf.kinds.acquisition_spec import AcquisitionSpec
from dataperf.scores import Score, TaskScore

if TYPE_CHECKING:  # the algorithms load only when one runs
    from dataperf.algorithms.acquisition import AcquisitionTask

SCORER_VERSION = "acquisition-1"
MARKETS = "public/markets.parquet"
SELLERS = "public/sellers.parquet"
BUYER = "public/buyer.parquet"
SUMMARIES = "public/summaries.parquet"
SAMPLES = "public/samples.parquet"
ROWS = "hidden/rows.parquet"
OFFERS = "hidden/offers.parquet"
TEST = "hidden/test.parquet"
# The original evaluator's seed: ``numpy.random.seed(1111)`` when its seller module is imported.
ORIGINAL_SEED = 1111


@dataclass(frozen=True)
class AcquisitionSubmission(Submission):
    purchases: Mapping[str, np.ndarray] = field(default_factory=dict)  # market -> (S,) counts


# The challenge -------------------------------------------------------------------------------


class AcquisitionChallenge(Challenge):
    """An acquisition challenge configured by an :class:`AcquisitionSpec`."""

    kind = "acquisition"
    scorer_version = SCORER_VERSION
    baseline_algorithm = "uniform"

    def __init__(
        self, spec: AcquisitionSpec, *, builder: str | None = None, importer: str | None = None
    ):
        self.spec = spec
        adopt_spec(self, spec, builder=builder, importer=importer)
        self.metric = "market_score"
        self.direction = "higher"

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        origin: str,
        builder: str | None = None,
        importer: str | None = None,
    ) -> AcquisitionChallenge:
        spec = validate_spec(AcquisitionSpec, data, origin=origin)
        return cls(spec, builder=builder, importer=importer)

    def rules(self) -> dict[str, str]:
        spec = self.spec
        weight = spec.accuracy_weight
        return {
            "task": "In each market, choose how many rows to buy from each seller within the "
            "buyer's budget, from the sellers' public summaries and samples and the buyer's "
            "small labelled set; buying k of a seller's n rows costs its price x k / n.",
            "frozen model": f"{spec.model.name} (scikit-learn, C={spec.model.C:g}, max_iter="
            f"{spec.model.max_iter}, random_state 0) trained on the rows bought",
            "metric": f"market score = {weight:g} x test accuracy + {1 - weight:g} x the share "
            f"of the budget left unspent (higher is better); the accuracy is the mean over "
            f"{spec.draws} seeded random draws of the rows bought from each seller; "
            "leaderboard: per market and the mean over markets",
            "official profile": "the original evaluator's procedure (one RandomState(1111) "
            "for all markets, rows drawn with replacement, its float sums), without an interval",
            "interval": f"{spec.bootstrap.confidence:.0%} percentile bootstrap over test rows "
            f"({spec.bootstrap.n_resamples} resamples, seeded)",
            "submission": " or ".join(f"{{market}}.{f}" for f in spec.formats)
            + ": one line of comma-separated row counts, one per seller in seller order; "
            "one file per market",
        }

    def report_columns(self) -> list[tuple[str, str]]:
        return [("accuracy", "accuracy"), ("cost", "cost"), ("savings", "savings")]

    # Edition data -----------------------------------------------------------------------------

    def market_terms(self, edition: Edition) -> dict[str, MarketTerms]:
        """Every market's budget and sellers (sizes and prices), by market name."""
        markets = edition.read_table(MARKETS)
        sellers = edition.read_table(SELLERS)
        out: dict[str, MarketTerms] = {}
        for market in edition.tasks:
            where = f"edition {edition.path}: market {market}"
            budgets = _market_rows(markets, market).column("budget").to_numpy()
            if len(budgets) != 1 or not np.isfinite(budgets[0]) or budgets[0] <= 0:
                raise EditionError(f"{where}: {MARKETS} must give one positive budget")
            table = _market_rows(sellers, market)
            index = table.column("seller").to_numpy().astype(np.int64)
            order = np.argsort(index, kind="stable")
            rows = table.column("rows").to_numpy().astype(np.int64)[order]
            prices = table.column("max_price").to_numpy().astype(np.float64)[order]
            pricing = set(table.column("pricing").to_pylist())
            if not len(index) or not np.array_equal(index[order], np.arange(len(index))):
                raise EditionError(f"{where}: {SELLERS} must number its sellers 0..S-1")
            if (rows < 1).any() or not np.isfinite(prices).all() or (prices < 0).any():
                raise EditionError(f"{where}: {SELLERS} needs rows >= 1 and prices >= 0")
            if pricing != {"lin"}:
                raise EditionError(
                    f"{where}: unsupported pricing {sorted(pricing)}; this "
                    "version knows 'lin' (price x k / n)"
                )
            out[market] = MarketTerms(market, float(budgets[0]), rows, prices)
        return out

    def offers(self, edition: Edition, terms: MarketTerms) -> list[SellerOffers]:
        """What each seller of a market sells, in seller and position order."""
        table = _market_rows(edition.read_table(OFFERS), terms.market)
        seller = table.column("seller").to_numpy().astype(np.int64)
        position = table.column("position").to_numpy().astype(np.int64)
        order = np.lexsort((position, seller))
        expected_seller = np.repeat(np.arange(terms.sellers), terms.rows)
        expected_position = np.concatenate([np.arange(n) for n in terms.rows])
        if len(order) != len(expected_seller) or not (
            np.array_equal(seller[order], expected_seller)
            and np.array_equal(position[order], expected_position)
        ):
            raise EditionError(
                f"edition {edition.path}: {OFFERS}, market {terms.market}: every "
                "seller must offer positions 0..n-1 exactly once, n as in "
                f"{SELLERS}"
            )
        rows = table.column("row").to_numpy().astype(np.int64)[order]
        labels = table.column("label").to_numpy().astype(np.int64)[order]
        shared = edition.read_table(ROWS).num_rows  # the table shared_rows reads, cached
        if len(rows) and not 0 <= rows.min() <= rows.max() < shared:
            raise EditionError(
                f"edition {edition.path}: {OFFERS}, market {terms.market}: rows "
                f"must lie in 0..{shared - 1} (the rows of {ROWS})"
            )
        bounds = np.cumsum(terms.rows)[:-1]
        return [
            SellerOffers(r, y)
            for r, y in zip(np.split(rows, bounds), np.split(labels, bounds), strict=True)
        ]

    def shared_rows(self, edition: Edition) -> np.ndarray:
        """The embedding table shared by every seller, (R, d) as stored (row order)."""
        table = edition.read_table(ROWS)
        index = table.column("row").to_numpy().astype(np.int64)
        order = np.argsort(index, kind="stable")
        if not np.array_equal(index[order], np.arange(len(index))):
            raise EditionError(f"edition {edition.path}: {ROWS} must number its rows 0..R-1")
        embeddings = embedding_array(table.column("embedding"))
        return embeddings if np.array_equal(order, np.arange(len(order))) else embeddings[order]

    # Submissions ----------------------------------------------------------------------------

    def parse_submission(
        self,
        files_by_name: Mapping[str, bytes],
        edition: Edition,
        *,
        profile: Profile = "default",
    ) -> AcquisitionSubmission:
        problems: list[Problem] = []
        by_market = match_files(
            files_by_name,
            edition.tasks,
            patterns=[f"{{task}}.{ext}" for ext in self.spec.formats],
            challenge=self.name,
            problems=problems,
        )
        terms = self.market_terms(edition)
        purchases: dict[str, np.ndarray] = {}
        for market, name in by_market.items():
            text = files.decode_text(name, files_by_name[name], problems)
            if text is None:
                continue
            counts = files.parse_purchase(name, text, terms[market], problems)
            if counts is not None:
                purchases[market] = counts
        if problems:
            raise SubmissionError(problems)
        return AcquisitionSubmission(self.name, dict(files_by_name), (), purchases)

    # Scoring --------------------------------------------------------------------------------

    def score(
        self,
        submission: Submission,
        edition: Edition,
        *,
        profile: Profile = "default",
        progress: Progress = no_progress,
        split: TestSplit | None = None,
    ) -> Score:
        if not isinstance(submission, AcquisitionSubmission):
            raise TypeError("expected an AcquisitionSubmission from parse_submission")
        spec = self.spec
        weight = spec.accuracy_weight
        terms = self.market_terms(edition)
        test = edition.read_table(TEST)
        tasks = self.tasks(edition)
        embeddings = self.shared_rows(edition)
        steps = len(tasks) * spec.draws
        # The official profile: one generator for all markets, as the original's global one.
        original_rng = np.random.RandomState(ORIGINAL_SEED) if profile == "official" else None
        task_scores: list[TaskScore] = []
        samples: list[np.ndarray] = []
        for t, task in enumerate(tasks):
            market = terms[task.name]
            counts = np.asarray(submission.purchases[task.name], dtype=np.int64)
            problems: list[Problem] = []
            if counts.shape != (market.sellers,):
                problems.append(
                    Problem(
                        f"{task.name}.txt",
                        "wrong-seller-count",
                        f"market {task.name} has {market.sellers} sellers",
                    )
                )
            else:
                files.check_purchase(f"{task.name}.txt", counts, market, problems)
            if problems:
                raise SubmissionError(problems)
            rows = _market_rows(test, task.name)
            x_test = embedding_array(rows.column("embedding"))
            y_test = rows.column("label").to_numpy().astype(np.int64)
            keep = None
            if split is not None:  # checked before training: an empty part fails fast
                try:
                    keep = split.mask(len(y_test), t)
                except SpecError as err:
                    raise SpecError(f"market {task.name}: {err}") from None

            def report(
                step: str, done: int, total: int, *, t: int = t, name: str = task.name
            ) -> None:
                progress(f"scoring market {name}", t * spec.draws + done, steps)

            correct = market_correct(
                counts,
                self.offers(edition, market),
                embeddings,
                x_test,
                y_test,
                market_index=t,
                draws=spec.draws,
                seed=spec.seed,
                C=spec.model.C,
                max_iter=spec.model.max_iter,
                progress=report,
                original_rng=original_rng,
            )
            if keep is not None:  # the same predictions, scored on one part of the rows only
                correct = correct[:, keep]
            m = correct.shape[1]
            per_draw = correct.sum(axis=1) / max(m, 1)
            if original_rng is None:
                accuracy = float(np.mean(per_draw))
                cost = market.cost(counts)
            else:
                accuracy = original_mean(per_draw.tolist())
                cost = original_mean([original_cost(counts, market)] * spec.draws)
            savings = (market.budget - cost) / market.budget
            value = weight * accuracy + (1 - weight) * savings
            details: dict[str, Any] = {
                "accuracy": accuracy,
                "accuracy_per_draw": per_draw.tolist(),
                "cost": cost,
                "budget": market.budget,
                "savings": savings,
                "rows_bought": int(counts.sum()),
                "sellers_used": int(np.count_nonzero(counts)),
                "accuracy_weight": weight,
                "test_rows": m,
            }
            if split is not None:
                details["test_part"] = split.part
            low = high = None
            if profile != "official":
                boot = bootstrap_accuracy(
                    correct.mean(axis=0),
                    n_resamples=spec.bootstrap.n_resamples,
                    seed=task_seed(spec.bootstrap.seed, t),
                )
                task_samples = weight * boot + (1 - weight) * savings
                samples.append(task_samples)
                interval = metrics.percentile_interval(
                    task_samples, confidence=spec.bootstrap.confidence
                )
                low, high = interval.low, interval.high
            task_scores.append(TaskScore(task.name, float(value), low, high, details))
        progress("scoring", steps, steps)
        return Score(
            challenge=self.name,
            edition=edition.name,
            edition_hash=edition.content_hash,
            scorer_version=SCORER_VERSION,
            profile=profile,
            metric=self.metric,
            direction="higher",
            tasks=tuple(task_scores),
            aggregate=mean_task_score(
                task_scores, samples, confidence=self.spec.bootstrap.confidence
            ),
            warnings=submission.warnings,
            part="all" if split is None else split.part,
        )

    # Algorithms -----------------------------------------------------------------------------

    def algorithms(self) -> dict[str, str]:
        from dataperf.algorithms.acquisition import STRATEGIES

        return algorithm_summaries(STRATEGIES)

    def acquisition_task(
        self, edition: Edition, market: str, terms: MarketTerms | None = None
    ) -> AcquisitionTask:
        """The public data of one market in the form participant strategies take; ``terms``
        are the market's from :meth:`market_terms`, read when not given."""
        from dataperf.algorithms.acquisition import AcquisitionTask, SellerSummary

        self.task(edition, market)
        if terms is None:
            terms = self.market_terms(edition)[market]
        summaries = _market_rows(edition.read_table(SUMMARIES), market)
        samples = _market_rows(edition.read_table(SAMPLES), market)
        buyer = _market_rows(edition.read_table(BUYER), market)
        summary_seller = summaries.column("seller").to_numpy().astype(np.int64)
        feature = summaries.column("feature").to_numpy().astype(np.int64)
        order = np.lexsort((feature, summary_seller))
        feature = feature[order]
        counts = embedding_array(summaries.column("counts")).astype(np.int64)[order]
        edges = embedding_array(summaries.column("edges")).astype(np.float64)[order]
        correlation = summaries.column("label_correlation").to_numpy().astype(np.float64)[order]
        summary_seller = summary_seller[order]
        sample_seller = samples.column("seller").to_numpy().astype(np.int64)
        sample_x = embedding_array(samples.column("embedding")).astype(np.float32)
        sample_y = samples.column("label").to_numpy().astype(np.int64)
        sellers = []
        for s in range(terms.sellers):
            mine = summary_seller == s
            if not np.array_equal(feature[mine], np.arange(np.count_nonzero(mine))):
                raise EditionError(
                    f"edition {edition.path}: {SUMMARIES}, market {market}, "
                    f"seller {s}: features must be numbered 0..d-1"
                )
            sold = sample_seller == s
            sellers.append(
                SellerSummary(
                    rows=int(terms.rows[s]),
                    max_price=float(terms.max_prices[s]),
                    counts=counts[mine],
                    edges=edges[mine],
                    label_correlation=correlation[mine],
                    samples_x=sample_x[sold],
                    samples_y=sample_y[sold],
                )
            )
        return AcquisitionTask(
            budget=terms.budget,
            sellers=tuple(sellers),
            x_buyer=embedding_array(buyer.column("embedding")).astype(np.float32),
            y_buyer=buyer.column("label").to_numpy().astype(np.int64),
            n_classes=len(self.spec.classes),
        )

    def run_algorithm(
        self,
        name: str,
        edition: Edition,
        *,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        progress: Progress = no_progress,
    ) -> dict[str, bytes]:
        from dataperf.algorithms.acquisition import STRATEGIES

        strategy = make_algorithm(STRATEGIES, name, params, random_state)
        terms = self.market_terms(edition)
        tasks = self.tasks(edition)
        out: dict[str, bytes] = {}
        for i, task in enumerate(tasks):
            progress(f"{name} on market {task.name}", i, len(tasks))
            market = terms[task.name]
            data = self.acquisition_task(edition, task.name, market)
            try:
                counts = np.asarray(strategy.purchase(data))
            except ValueError as err:  # strategies raise ValueError for bad hyper-parameters
                raise AlgorithmError(str(err)) from None
            problems: list[Problem] = []
            if counts.shape != (market.sellers,) or not np.issubdtype(counts.dtype, np.integer):
                raise AlgorithmError(
                    f"{name} did not return {market.sellers} integer counts for market {task.name}"
                )
            if not files.check_purchase(task.name, counts, market, problems):
                raise AlgorithmError(
                    f"{name} made an invalid purchase: " + "; ".join(p.message for p in problems)
                )
            out[f"{task.name}.{self.spec.formats[0]}"] = files.write_purchase(counts)
        progress("done", len(tasks), len(tasks))
        return out


def _market_rows(table: pa.Table, market: str) -> pa.Table:
    return table.filter(pc.equal(table.column("market"), market))


__all__ = [
    "AcquisitionChallenge",
    "AcquisitionSpec",
    "AcquisitionSubmission",
    "SellerOffers",
    "bootstrap_accuracy",
    "drawn_positions",
    "market_correct",
    "original_cost",
    "original_mean",
    "original_positions",
]
