"""The markets drawn from the seed: buyer rows, budgets, and sellers with their hidden facts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataperf.challenges.data_acquisition.build.sources import BUYER_TOPICS, CLASSES, TOPICS

# Seller profiles: (name, share of sellers, range of the buyer topic's share of its rows).
PROFILES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("focused", 0.3, (0.6, 1.0)),
    ("other", 0.3, (0.0, 0.1)),
    ("mixed", 0.4, (0.2, 0.6)),
)
MAX_NOISE = 0.4
PRICE_RANGE = (20.0, 100.0)
BUDGET_SELLERS = (1.5, 3.0)


@dataclass(frozen=True)
class Sizes:
    """Per market: buyer rows (public, test), sellers, and the range of a seller's rows."""

    public: int
    test: int
    sellers: int
    min_rows: int
    max_rows: int


DEFAULT_SIZES = Sizes(public=100, test=1_000, sellers=20, min_rows=300, max_rows=4_000)


def limit_sizes(limit: int) -> Sizes:
    """Sizes of a quick build on ``limit`` tweets."""
    return Sizes(
        public=max(5, limit // 80),
        test=max(10, limit // 30),
        sellers=max(4, min(20, limit // 60)),
        min_rows=max(5, limit // 80),
        max_rows=max(10, limit // 10),
    )


@dataclass(frozen=True)
class SellerPlan:
    """One seller: its rows (corpus positions, in position order, duplicates included), the
    labels it gives them, and its hidden facts."""

    rows: np.ndarray
    labels: np.ndarray
    max_price: float
    profile: str
    topic_shares: np.ndarray  # the drawn mix, over TOPICS
    topic_rows: np.ndarray  # what it came to: the seller's rows per topic (repeats included)
    noise_rate: float  # the drawn rate; flipped is what it came to
    flipped: int
    skew: float
    skew_class: int  # -1: no skew
    duplication: float
    unique: int


@dataclass(frozen=True)
class MarketPlan:
    name: str
    buyer_topic: str
    public: np.ndarray  # corpus positions
    test: np.ndarray
    budget: float
    sellers: list[SellerPlan]


def _topic_shares(
    profile: str, low: float, high: float, buyer: int, rng: np.random.Generator
) -> np.ndarray:
    others = [t for t in range(len(TOPICS)) if t != buyer]
    chosen = rng.choice(
        others, rng.integers(1, 3) if profile == "other" else len(others), replace=False
    )
    shares = np.zeros(len(TOPICS))
    shares[buyer] = rng.uniform(low, high)
    shares[chosen] = (1 - shares[buyer]) * rng.dirichlet(np.ones(len(chosen)))
    return shares


def _draw_seller(
    profile: str,
    buyer: int,
    pools: list[np.ndarray],
    labels: np.ndarray,
    topics: np.ndarray,
    sizes: Sizes,
    rng: np.random.Generator,
) -> SellerPlan:
    low, high = next(r for p, _, r in PROFILES if p == profile)
    shares = _topic_shares(profile, low, high, buyer, rng)
    size = round(float(np.exp(rng.uniform(np.log(sizes.min_rows), np.log(sizes.max_rows)))))
    duplication = 0.0 if rng.random() < 0.5 else round(float(rng.uniform(0.1, 0.5)), 2)
    skew = 0.0 if rng.random() < 0.5 else round(float(rng.uniform(0.5, 0.9)), 2)
    skew_class = int(rng.integers(len(CLASSES))) if skew else -1
    noise = round(float(rng.uniform(0.0, MAX_NOISE)), 2)
    counts = rng.multinomial(max(1, round(size * (1 - duplication))), shares)
    parts = []
    for topic, count in enumerate(counts):
        pool = pools[topic]
        if not count or not len(pool):
            continue
        weights = np.ones(len(pool))
        if skew:
            favoured = labels[pool] == skew_class
            weights += favoured * skew / max(float(favoured.mean()), 1e-9) - skew
        weights = np.clip(weights, 1e-6, None)
        parts.append(
            rng.choice(pool, min(int(count), len(pool)), replace=False, p=weights / weights.sum())
        )
    unique = np.concatenate(parts)
    given = labels[unique].astype(np.int8)
    flipped = round(noise * len(unique))
    wrong = rng.choice(len(unique), flipped, replace=False)
    given[wrong] = (given[wrong] + rng.integers(1, len(CLASSES), flipped)) % len(CLASSES)
    repeats = rng.integers(0, len(unique), max(0, size - len(unique)) if duplication else 0)
    order = rng.permutation(len(unique) + len(repeats))
    every = np.concatenate([np.arange(len(unique)), repeats])[order]
    rows = unique[every]
    return SellerPlan(
        rows=rows,
        labels=given[every],
        max_price=round(float(rng.uniform(*PRICE_RANGE)), 2),
        profile=profile,
        topic_shares=shares,
        topic_rows=np.bincount(topics[rows], minlength=len(TOPICS)),
        noise_rate=noise,
        flipped=flipped,
        skew=skew,
        skew_class=skew_class,
        duplication=duplication,
        unique=len(unique),
    )


def make_plan(
    topics: np.ndarray, labels: np.ndarray, kept: np.ndarray, *, sizes: Sizes, seed: int
) -> list[MarketPlan]:
    """Draw every market's buyer rows, sellers and budget from generators of ``seed``.
    ``kept`` are the corpus positions that may be used (unique texts)."""
    buyer_rng, *market_rngs = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(1 + len(BUYER_TOPICS))
    )
    reserved = {}
    for topic in BUYER_TOPICS:
        members = kept[topics[kept] == TOPICS.index(topic)]
        need = sizes.public + sizes.test
        if need > len(members):
            raise ValueError(
                f"the {topic} topic has {len(members)} tweets, fewer than {need} buyer rows"
            )
        reserved[topic] = buyer_rng.permutation(buyer_rng.choice(members, need, replace=False))
    taken = np.concatenate(list(reserved.values()))
    free = np.setdiff1d(kept, taken)
    pools = [free[topics[free] == t] for t in range(len(TOPICS))]
    markets = []
    for k, (topic, rng) in enumerate(zip(BUYER_TOPICS, market_rngs, strict=True)):
        quota = [round(share * sizes.sellers) for _, share, _ in PROFILES[:-1]]
        profiles = [p for (p, _, _), q in zip(PROFILES, quota, strict=False) for _ in range(q)]
        profiles += [PROFILES[-1][0]] * (sizes.sellers - len(profiles))
        sellers = [
            _draw_seller(p, TOPICS.index(topic), pools, labels, topics, sizes, rng)
            for p in rng.permutation(profiles)
        ]
        prices = np.array([s.max_price for s in sellers])
        budget = round(float(rng.uniform(*BUDGET_SELLERS) * np.median(prices)), 2)
        markets.append(
            MarketPlan(
                str(k),
                topic,
                reserved[topic][: sizes.public],
                reserved[topic][sizes.public :],
                budget,
                sellers,
            )
        )
    return markets
