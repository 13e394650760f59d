"""Reading and writing acquisition submission files: how many rows to buy from each seller.

A file ``{market}.txt`` (``{market}.csv`` is accepted too) holds one line of S comma-separated
non-negative integers: the number of rows bought from seller 0, 1, ..., S-1 of the market. This
is the original DataPerf data acquisition format. Surrounding spaces, a trailing newline, CRLF
line ends and a UTF-8 byte order mark are accepted.

Parsing is strict and side-effect free, and every problem is collected at once (file, rule, a
message naming the market and the sellers). Rules (``Problem.rule``): file-too-large,
empty-file, binary-file, encoding (:func:`dataperf.kinds.selection_files.decode_text`),
too-many-lines, wrong-seller-count, not-an-integer, negative-count, more-than-offered,
over-budget; for the set of files (:func:`dataperf.kinds._common.match_files`):
unexpected-file, missing-task, ambiguous-task-file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dataperf.budget import purchase_cost, within_budget
from dataperf.exceptions import Problem
from dataperf.kinds.cleaning_files import _listing
from dataperf.kinds.selection_files import decode_text

__all__ = [
    "MarketTerms",
    "check_purchase",
    "decode_text",
    "parse_counts",
    "parse_purchase",
    "purchase_cost",
    "within_budget",
    "write_purchase",
]

# Spending the budget exactly is allowed: costs are compared with this relative tolerance.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 18  # longer counts exceed any seller's rows, without converting them


@dataclass(frozen=True)
class MarketTerms:
    """What a market's sellers offer and what its buyer may spend.

    Buying k of the n_s rows of seller s costs ``max_prices[s] * k / rows[s]``.
    """

    market: str
    budget: float
    rows: np.ndarray  # (S,) int64: n_s, the rows each seller offers
    max_prices: np.ndarray  # (S,) float64: the price of all n_s rows

    @property
    def sellers(self) -> int:
        return len(self.rows)

    def cost(self, counts: np.ndarray) -> float:
        """The price of buying ``counts[s]`` rows from each seller s."""
        return purchase_cost(self.max_prices, self.rows, counts)


def parse_counts(
    name: str, text: str, *, market: str, sellers: int, problems: list[Problem]
) -> np.ndarray | None:
    """The S integers on the file's one line (int64, possibly negative or too large), or None
    after recording every problem: extra lines, a wrong number of fields, non-integers."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    found: list[Problem] = []
    if len(lines) > 1:
        found.append(
            Problem(
                name,
                "too-many-lines",
                f"has {len(lines):,} lines; market {market} needs exactly one line "
                f"of {sellers} comma-separated counts",
                2,
            )
        )
    cells = [cell.strip() for cell in (lines[0] if lines else "").split(",")]
    if len(cells) != sellers:
        found.append(
            Problem(
                name,
                "wrong-seller-count",
                f"has {len(cells):,} count(s) on line 1; market {market} has "
                f"{sellers} sellers (one count for each of sellers 0..{sellers - 1})",
                1,
            )
        )
    bad = [(s, cell) for s, cell in enumerate(cells) if not _INTEGER.fullmatch(cell)]
    if bad:
        found.append(
            Problem(
                name,
                "not-an-integer",
                f"market {market}: the count of "
                + _listing([f"seller {s} ({_shown(cell)})" for s, cell in bad])
                + " is not a whole number of rows",
                1,
            )
        )
    if found:
        problems.extend(found)
        return None
    return np.array([_clamped(cell) for cell in cells], dtype=np.int64)


def check_purchase(
    name: str, counts: np.ndarray, terms: MarketTerms, problems: list[Problem]
) -> bool:
    """Whether S counts are a valid purchase: none negative, none above what its seller offers,
    and at most the budget in all; every broken rule is recorded."""
    counts = np.asarray(counts, dtype=np.int64)
    found: list[Problem] = []
    negative = np.flatnonzero(counts < 0).tolist()
    if negative:
        found.append(
            Problem(
                name,
                "negative-count",
                f"market {terms.market}: "
                + _listing([f"seller {s} ({counts[s]})" for s in negative])
                + " has a negative count; counts must be 0 or more",
                1,
            )
        )
    over = np.flatnonzero(counts > terms.rows).tolist()
    if over:
        found.append(
            Problem(
                name,
                "more-than-offered",
                f"market {terms.market}: "
                + _listing([f"seller {s} ({counts[s]:,} of {terms.rows[s]:,})" for s in over])
                + " is asked for more rows than the seller offers",
                1,
            )
        )
    if not negative:
        cost = terms.cost(counts)
        if not within_budget(cost, terms.budget):
            found.append(
                Problem(
                    name,
                    "over-budget",
                    f"market {terms.market}: the purchase costs {cost:.6g}; the "
                    f"budget is {terms.budget:.6g}",
                    1,
                )
            )
    problems.extend(found)
    return not found


def parse_purchase(
    name: str, text: str, terms: MarketTerms, problems: list[Problem]
) -> np.ndarray | None:
    """The validated counts (int64, one per seller) in a decoded file, or None after recording
    every problem."""
    counts = parse_counts(name, text, market=terms.market, sellers=terms.sellers, problems=problems)
    if counts is None or not check_purchase(name, counts, terms, problems):
        return None
    return counts


def write_purchase(counts: Iterable[int]) -> bytes:
    """A submission file: the counts on one line, comma-separated."""
    return (",".join(str(int(k)) for k in counts) + "\n").encode("ascii")


def _clamped(cell: str) -> int:
    """The integer in a cell; huge values become a number above any seller's rows."""
    digits = cell.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        return -(10**_MAX_DIGITS) if cell.startswith("-") else 10**_MAX_DIGITS
    return int(cell)


def _shown(cell: str, width: int = 30) -> str:
    if not cell:
        return "empty"
    return repr(cell if len(cell) <= width else cell[: width - 3] + "...")
