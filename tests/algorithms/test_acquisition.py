"""Participant-side acquisition strategies: the contract every strategy keeps, valid counts for
any market (a property test), the plan-to-counts helper, and the strong strategies against the
uniform baseline on synthetic markets with clean, noisy, off-domain, skewed and duplicated
sellers."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataperf.algorithms.acquisition import (
    STRATEGIES,
    AcquisitionTask,
    EarlyStopStrategy,
    SellerSummary,
    SimilarityStrategy,
    affordable_counts,
    seller_statistics,
    summarize,
)
from dataperf.kinds.acquisition_files import within_budget
from dataperf.kinds.acquisition_procedure import SellerOffers, market_correct

NAMES = sorted(STRATEGIES)
STRONG = ["early-stop", "sample-value", "similarity"]


#: Kinds of synthetic sellers, cycled in this order.
SELLER_KINDS = ("clean", "noisy", "off-domain", "skewed", "duplicated")


def make_synthetic_market(
    n_sellers: int = 20,
    dim: int = 64,
    *,
    n_classes: int = 3,
    n_buyer: int = 100,
    n_test: int = 1000,
    budget_fraction: float = 0.15,
    random_state: int = 0,
) -> tuple[AcquisitionTask, list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray, list[str]]:
    """A market of Gaussian classes in topics, with sellers of known quality.

    Rows come from 4 topics; a row of topic t and class c is ``shift_t + centre_{t,c}`` plus
    unit noise, where a class's centres in different topics share a common part. The buyer
    (and its test rows) mostly draw topics 0 and 1. Sellers cycle through
    :data:`SELLER_KINDS`: ``clean`` (the buyer's topics, correct labels), ``noisy`` (half of the
    labels shifted to the next class), ``off-domain`` (topics 2 and 3), ``skewed`` (85%
    of the rows of one class) and ``duplicated`` (a tenth of the rows, each repeated about ten
    times). Sizes are 200-2000 rows; prices are drawn independently of quality. The budget is
    ``budget_fraction`` of the price of everything. Returns ``(task, offers, X_test, y_test,
    kinds)`` where ``offers[s]`` is seller s's (x, y) and ``kinds[s]`` its kind.
    """
    rng = np.random.default_rng(random_state)
    topics = 4
    shared = rng.normal(0.0, 0.22, size=(n_classes, dim))
    centres = shared[None] + rng.normal(0.0, 0.12, size=(topics, n_classes, dim))
    shifts = rng.normal(0.0, 0.35, size=(topics, dim))
    buyer_mix = np.array([0.55, 0.35, 0.05, 0.05])
    away_mix = np.array([0.05, 0.05, 0.45, 0.45])

    def draw(n: int, mix: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        topic = rng.choice(topics, size=n, p=mix)
        y = rng.choice(n_classes, size=n, p=classes)
        x = shifts[topic] + centres[topic, y] + rng.normal(size=(n, dim))
        return x.astype(np.float32), y.astype(np.int64)

    balanced = np.full(n_classes, 1.0 / n_classes)
    offers: list[tuple[np.ndarray, np.ndarray]] = []
    kinds: list[str] = []
    for s in range(n_sellers):
        kind = SELLER_KINDS[s % len(SELLER_KINDS)]
        n = int(rng.integers(200, 2001))
        mix = away_mix if kind == "off-domain" else buyer_mix
        classes = balanced
        if kind == "skewed":
            classes = np.full(n_classes, 0.15 / (n_classes - 1))
            classes[rng.integers(n_classes)] = 0.85
        x, y = draw(max(1, n // 10) if kind == "duplicated" else n, mix, classes)
        if kind == "duplicated":
            pick = rng.integers(len(x), size=n)
            x, y = x[pick], y[pick]
        if kind == "noisy":
            flip = rng.random(n) < 0.5
            y[flip] = (y[flip] + 1) % n_classes
        offers.append((x, y))
        kinds.append(kind)
    prices = rng.uniform(20.0, 200.0, size=n_sellers)
    sellers = tuple(summarize(x, y, p, rng=rng) for (x, y), p in zip(offers, prices, strict=True))
    x_buyer, y_buyer = draw(n_buyer, buyer_mix, balanced)
    x_test, y_test = draw(n_test, buyer_mix, balanced)
    task = AcquisitionTask(
        budget=float(budget_fraction * prices.sum()),
        sellers=sellers,
        x_buyer=x_buyer,
        y_buyer=y_buyer,
        n_classes=n_classes,
    )
    return task, offers, x_test, y_test, kinds


@pytest.fixture(scope="module")
def markets() -> list[tuple]:
    return [make_synthetic_market(random_state=seed) for seed in range(6)]


def _check(counts: np.ndarray, task: AcquisitionTask) -> None:
    assert isinstance(counts, np.ndarray)
    assert counts.dtype == np.int64
    assert counts.shape == (task.n_sellers,)
    assert np.all(counts >= 0)
    assert np.all(counts <= task.rows)
    assert within_budget(task.cost(counts), task.budget)


def _seller(
    rng: np.random.Generator,
    rows: int,
    price: float,
    dim: int = 3,
    n_classes: int = 2,
    samples: int = 2,
) -> SellerSummary:
    x = rng.normal(size=(max(rows, 2), dim)).astype(np.float32)
    y = np.arange(len(x)) % n_classes
    summary = summarize(x, y, price, n_samples=samples, rng=rng)
    return SellerSummary(
        rows,
        price,
        summary.counts,
        summary.edges,
        summary.label_correlation,
        summary.samples_x,
        summary.samples_y,
    )


def _task(
    rows: list[int],
    prices: list[float],
    budget: float,
    *,
    nb: int = 12,
    n_classes: int = 2,
    seed: int = 0,
) -> AcquisitionTask:
    rng = np.random.default_rng(seed)
    sellers = tuple(
        _seller(rng, r, p, n_classes=n_classes) for r, p in zip(rows, prices, strict=True)
    )
    x = rng.normal(size=(nb, 3)).astype(np.float32)
    return AcquisitionTask(budget, sellers, x, np.arange(nb) % n_classes, n_classes)


# ------------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("name", NAMES)
def test_counts_are_valid_and_fast(name: str, markets: list[tuple]) -> None:
    for task, *_ in markets[:3]:
        started = time.perf_counter()
        counts = STRATEGIES[name]().purchase(task)
        assert time.perf_counter() - started < 1.0
        _check(counts, task)
        assert counts.sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str, markets: list[tuple]) -> None:
    task = markets[0][0]
    first = STRATEGIES[name](random_state=3).purchase(task)
    assert np.array_equal(first, STRATEGIES[name](random_state=3).purchase(task))


@pytest.mark.parametrize("name", NAMES)
def test_follows_the_scikit_learn_contract(name: str, check_contract: Callable) -> None:
    check_contract(name, STRATEGIES[name])


@pytest.mark.parametrize(
    ("name", "param", "value", "message"),
    [
        (
            "uniform",
            "fraction",
            1.5,
            "The 'fraction' parameter of UniformStrategy must be a float"
            r" in \[0, 1\]. Got 1.5 instead.",
        ),
        ("proportional", "random_state", -1, "'random_state' parameter of ProportionalStrategy"),
        (
            "similarity",
            "bandwidth",
            0.0,
            "The 'bandwidth' parameter of SimilarityStrategy must be a float > 0. Got 0.0 instead.",
        ),
        ("similarity", "min_ratio", "high", "'min_ratio' parameter of SimilarityStrategy"),
        ("sample-value", "C", -1.0, "The 'C' parameter of SampleValueStrategy must be a float"),
        ("sample-value", "summary_weight", 2, "'summary_weight' parameter of SampleValueStrategy"),
        (
            "early-stop",
            "step",
            0.0,
            "The 'step' parameter of EarlyStopStrategy must be a float"
            r" in \(0, 1\]. Got 0.0 instead.",
        ),
        (
            "early-stop",
            "n_repeats",
            0,
            "'n_repeats' parameter of EarlyStopStrategy must be an int >= 1",
        ),
        ("early-stop", "accuracy_weight", True, "'accuracy_weight' parameter"),
        ("early-stop", "exponent", 3.0, "'exponent' parameter of EarlyStopStrategy"),
    ],
)
def test_bad_hyper_parameters(
    name: str, param: str, value: object, message: str, markets: list[tuple]
) -> None:
    with pytest.raises(ValueError, match=message):
        STRATEGIES[name](**{param: value}).purchase(markets[0][0])


# ------------------------------------------------------------------------------ any market


@st.composite
def tasks(draw: st.DrawFn) -> AcquisitionTask:
    n_sellers = draw(st.integers(1, 6))
    rows = draw(st.lists(st.integers(1, 60), min_size=n_sellers, max_size=n_sellers))
    prices = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0.01, 1e4, allow_nan=False)),
            min_size=n_sellers,
            max_size=n_sellers,
        )
    )
    budget = draw(
        st.one_of(st.just(0.0), st.just(float(sum(prices))), st.floats(0.0, 2e4, allow_nan=False))
    )
    n_classes = draw(st.integers(2, 4))
    nb = draw(st.integers(1, 25))
    return _task(rows, prices, budget, nb=nb, n_classes=n_classes, seed=draw(st.integers(0, 9)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task=tasks(), name=st.sampled_from(NAMES))
def test_any_task_gives_valid_counts(task: AcquisitionTask, name: str) -> None:
    _check(STRATEGIES[name]().purchase(task), task)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.integers(1, 1000), min_size=1, max_size=8),
    data=st.data(),
)
def test_affordable_counts_never_overspend(rows: list[int], data: st.DataObject) -> None:
    n = len(rows)
    prices = data.draw(st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=n, max_size=n))
    budget = data.draw(st.floats(0.0, 1e6, allow_nan=False))
    wanted = np.array(
        data.draw(
            st.lists(
                st.one_of(st.floats(-10, 2000, allow_nan=False), st.just(np.inf), st.just(np.nan)),
                min_size=n,
                max_size=n,
            )
        )
    )
    order = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)
    task = _task(rows, prices, budget, seed=1)
    counts = affordable_counts(task, wanted, order)
    _check(counts, task)


def test_affordable_counts_spends_the_leftovers_in_order() -> None:
    task = _task([10, 10, 10], [10.0, 10.0, 10.0], 15.5)
    # 1.5 + 1.5 + 1.5 rows wanted: floors to 1 each, the 1.5 left over buys one more row from
    # the first seller of the order that still has room
    counts = affordable_counts(task, np.array([5.0, 5.0, 5.5]), np.array([2, 0, 1]))
    assert counts.tolist() == [5, 5, 5]
    assert task.cost(counts) == 15.0
    counts = affordable_counts(task, np.array([4.5, 5.0, 5.5]), np.array([2, 0, 1]))
    assert counts.tolist() == [4, 5, 6]


def test_affordable_counts_scales_an_overspending_plan_down() -> None:
    task = _task([100, 100], [100.0, 100.0], 50.0)
    counts = affordable_counts(task, np.array([100.0, 100.0]), np.array([0, 1]))
    assert counts.tolist() == [25, 25]


def test_affordable_counts_respects_a_limit() -> None:
    task = _task([100, 100], [100.0, 100.0], 100.0)
    counts = affordable_counts(task, np.array([30.0, 0.0]), np.array([0, 1]), limit=20.0)
    assert counts.tolist() == [20, 0]


def test_spending_exactly_the_budget_is_allowed() -> None:
    task = _task([3, 7], [0.1, 0.7], 0.8)
    counts = STRATEGIES["uniform"]().purchase(task)
    assert counts.tolist() == [3, 7]
    assert within_budget(task.cost(counts), task.budget)


def test_free_sellers_are_bought_whole_by_the_baselines() -> None:
    task = _task([5, 8], [0.0, 10.0], 0.0)
    assert STRATEGIES["uniform"]().purchase(task).tolist() == [5, 0]
    assert STRATEGIES["proportional"]().purchase(task).tolist() == [5, 0]


def test_uniform_spends_equally_and_proportional_by_size() -> None:
    task = _task([100, 400], [100.0, 100.0], 100.0)
    assert STRATEGIES["uniform"]().purchase(task).tolist() == [50, 200]
    assert STRATEGIES["proportional"]().purchase(task).tolist() == [20, 320]
    half = STRATEGIES["uniform"](fraction=0.5).purchase(task)
    assert half.tolist() == [25, 100]


# ------------------------------------------------------------------------------ task checks


def test_cost() -> None:
    task = _task([10, 20], [5.0, 40.0], 100.0)
    assert task.cost(np.array([2, 5])) == pytest.approx(1.0 + 10.0)
    with pytest.raises(ValueError, match="counts must be 2 integers"):
        task.cost(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="between 0 and each seller's number of rows"):
        task.cost(np.array([11, 0]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget": -1.0}, "budget must be a finite float >= 0"),
        ({"budget": float("inf")}, "budget must be a finite float >= 0"),
        ({"n_classes": 1}, "n_classes must be an int >= 2"),
        ({"sellers": ()}, "sellers must be a non-empty sequence"),
        (
            {"x_buyer": np.zeros((0, 3), np.float32), "y_buyer": np.zeros(0)},
            "x_buyer must have at least one row",
        ),
        ({"x_buyer": np.zeros((4, 3), np.int64)}, "x_buyer must be a float array"),
        (
            {"x_buyer": np.zeros((4, 2), np.float32)},
            "seller 0 has 3 features; the buyer's rows have 2",
        ),
        ({"y_buyer": np.array([0, 1, 2, 0])}, r"y_buyer must hold class indices in \[0, 2\)"),
        ({"y_buyer": np.array([0, 1])}, "y_buyer must be a 1-D array of 4 labels"),
    ],
)
def test_task_validation(change: dict, message: str) -> None:
    task = _task([10], [1.0], 1.0, nb=4)
    fields = {
        "budget": task.budget,
        "sellers": task.sellers,
        "x_buyer": task.x_buyer,
        "y_buyer": task.y_buyer,
        "n_classes": 2,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        AcquisitionTask(**fields)


def test_sample_labels_must_fit_the_classes() -> None:
    rng = np.random.default_rng(0)
    seller = _seller(rng, 10, 1.0, n_classes=3, samples=3)
    with pytest.raises(
        ValueError,
        match=r"sample labels of seller 0 must be class indices in"
        r" \[0, 2\)",
    ):
        AcquisitionTask(1.0, (seller,), np.zeros((2, 3), np.float32), np.array([0, 1]), 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": 0}, "rows must be an int >= 1"),
        ({"rows": 2.5}, "rows must be an int >= 1"),
        ({"max_price": float("nan")}, "max_price must be a finite float >= 0"),
        ({"counts": np.full((3, 10), -1)}, "counts must be non-negative"),
        ({"edges": np.zeros((3, 10))}, r"edges must have shape \(3, 11\)"),
        ({"edges": -np.tile(np.arange(11.0), (3, 1))}, "edges must be finite and non-decreasing"),
        (
            {"label_correlation": np.array([0.0, np.nan, 0.0])},
            "label_correlation must be 3 finite numbers",
        ),
        ({"samples_x": np.zeros((2, 4), np.float32)}, "samples_x must have 3 columns"),
        ({"samples_y": np.array([0, -1])}, "samples_y must be 2 class indices >= 0"),
    ],
)
def test_seller_validation(change: dict, message: str) -> None:
    seller = _seller(np.random.default_rng(0), 10, 1.0)
    fields = {
        "rows": seller.rows,
        "max_price": seller.max_price,
        "counts": seller.counts,
        "edges": seller.edges,
        "label_correlation": seller.label_correlation,
        "samples_x": seller.samples_x,
        "samples_y": seller.samples_y,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        SellerSummary(**fields)


def test_seller_statistics_is_numpys() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float16)
    x[:, 2] = 1.5
    y = rng.integers(0, 3, 30)
    counts, edges, correlation = seller_statistics(x, y)
    for j in range(4):
        expected_counts, expected_edges = np.histogram(x[:, j].astype(np.float64), bins=10)
        assert np.array_equal(counts[j], expected_counts)
        assert np.array_equal(edges[j], expected_edges)
    assert correlation[2] == 0.0
    assert correlation[0] == pytest.approx(np.corrcoef(x[:, 0].astype(np.float64), y)[0, 1])
    assert not seller_statistics(x, np.ones(30))[2].any()


def test_summarize_follows_numpy_histogram() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    x[:, 2] = 1.0  # a constant feature has correlation 0
    summary = summarize(x, y, 7.0, rng=rng)
    counts, edges = np.histogram(x[:, 1].astype(np.float64), bins=10)
    assert np.array_equal(summary.counts[1], counts)
    assert np.array_equal(summary.edges[1], edges)
    assert summary.label_correlation[0] == pytest.approx(np.corrcoef(x[:, 0], y)[0, 1])
    assert summary.label_correlation[2] == 0.0
    assert summary.samples_x.shape == (5, 4)
    assert summary.rows == 50


# ------------------------------------------------------------------------------------ quality


def test_similarity_values_rank_clean_sellers_above_noisy_and_off_domain(
    markets: list[tuple],
) -> None:
    for task, _, _, _, kinds in markets:
        values = SimilarityStrategy().values(task)
        by_kind = {k: values[[i for i, kk in enumerate(kinds) if kk == k]].mean() for k in kinds}
        assert by_kind["clean"] > by_kind["noisy"]
        assert by_kind["clean"] > by_kind["off-domain"]


@pytest.mark.parametrize("name", STRONG)
def test_strong_strategies_beat_uniform(name: str, markets: list[tuple]) -> None:
    def accuracy(strategy: str, market: tuple) -> float:
        """The challenges' scorer (2 draws) on the market's sellers."""
        task, offers, x_test, y_test, _ = market
        starts = np.cumsum([0] + [len(x) for x, _ in offers])
        sellers = [SellerOffers(np.arange(start, start + len(y)), np.asarray(y))
                   for start, (_, y) in zip(starts, offers, strict=False)]
        table = np.concatenate([x for x, _ in offers])
        correct = market_correct(STRATEGIES[strategy]().purchase(task), sellers, table,
                                 x_test, y_test, market_index=0, draws=2, seed=0)
        return float(correct.mean())

    uniform = np.mean([accuracy("uniform", m) for m in markets])
    strong = np.mean([accuracy(name, m) for m in markets])
    assert strong > uniform + 0.003


def test_strong_strategies_put_money_on_clean_sellers(markets: list[tuple]) -> None:
    for name in STRONG:
        shares = []
        for task, _, _, _, kinds in markets:
            counts = STRATEGIES[name]().purchase(task)
            spend = task.max_prices * counts / task.rows
            clean = np.array([k == "clean" for k in kinds])
            shares.append(spend[clean].sum() / max(spend.sum(), 1e-12))
        assert np.mean(shares) > 0.45, name  # uniform: about a fifth


def test_early_stop_saves_money_when_gains_are_flat(markets: list[tuple]) -> None:
    task = markets[0][0]
    full = STRATEGIES["sample-value"]().purchase(task)
    stingy = EarlyStopStrategy(accuracy_weight=0.5).purchase(task)
    assert task.cost(stingy) < task.cost(full)
    generous = EarlyStopStrategy(accuracy_weight=1.0).purchase(task)
    assert task.cost(generous) == pytest.approx(task.cost(full))


def test_learning_curve_rises() -> None:
    task = make_synthetic_market(n_buyer=200, random_state=1)[0]
    curve = EarlyStopStrategy().learning_curve(task, 0)
    assert curve is not None
    a, b = curve
    assert 0.5 < a <= 1.0
    assert b > 0
    few = _task([10], [1.0], 1.0, nb=5)
    assert EarlyStopStrategy().learning_curve(few, 0) is None
