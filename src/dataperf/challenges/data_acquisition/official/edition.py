"""Importing the original files: every market read, the classes found, the edition written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dataperf.challenge import Progress, no_progress
from dataperf.challenges.data_acquisition.official.market import Market, read_market
from dataperf.challenges.data_acquisition.official.tables import make_tables
from dataperf.editions import Edition, Source, write_edition
from dataperf.exceptions import SourceDataError

MARKETS = "marketinfo"
FEATURES = "features"
SOURCE = Source(
    name="DataPerf v0.5 data acquisition for ML (DAM)",
    licence="Apache-2.0 (the DAM benchmark); embeddings as distributed by DataPerf",
    origin="original challenge files supplied by the user",
)
_MARKET_NAME = re.compile(r"^[0-9]+$")


def import_official(
    source: Path, out_dir: Path, *, overwrite: bool = False, progress: Progress = no_progress
) -> Edition:
    """Read the original layout under ``source`` and write an edition to ``out_dir``."""
    source = Path(source)
    if not source.is_dir():
        raise SourceDataError(f"{source} is not a directory with the original DataPerf files")
    info, features = source / MARKETS, source / FEATURES
    for folder in (info, features):
        if not folder.is_dir():
            raise SourceDataError(
                f"{folder} is missing: expected {MARKETS}/<market>/ (budget, prices, buyer "
                f"data, summaries) and {FEATURES}/<market>/<seller>.csv (the sellers' rows)"
            )
    names = sorted(
        (p.name for p in info.iterdir() if p.is_dir() and _MARKET_NAME.match(p.name)), key=int
    )
    if not names:
        raise SourceDataError(f"no markets under {info}: expected folders 0, 1, ...")
    markets: list[Market] = []
    dim: int | None = None
    for step, name in enumerate(names):
        progress("reading markets", step, len(names))
        market = read_market(info / name, features / name, name)
        d = market.buyer_x.shape[1]
        dim = d if dim is None else dim
        if d != dim:
            raise SourceDataError(
                f"{info / name}: the rows have {d} features, other markets "
                f"{dim}; every market needs the same features"
            )
        markets.append(market)
    assert dim is not None
    values = np.unique(
        np.concatenate(
            [m.buyer_y for m in markets]
            + [part for m in markets for s in m.sellers for part in (s.y, s.samples_y)]
        )
    )
    classes = [format(float(v), "g") for v in values]
    if len(classes) < 2:
        raise SourceDataError(
            f"{source}: every row has the label {classes[0]}; at least two classes are needed"
        )
    progress("writing edition", len(names), len(names) + 1)
    tables = make_tables(markets, values)
    parameters = {
        "dim": dim,
        "classes": classes,
        "markets": {
            m.name: {
                "budget": m.budget,
                "sellers": len(m.sellers),
                "buyer_rows": len(m.buyer_y),
                "seller_rows": [len(s.y) for s in m.sellers],
            }
            for m in markets
        },
    }
    edition = write_edition(
        out_dir,
        challenge="data-acquisition",
        edition="official",
        builder="dataperf.challenges.data_acquisition.official",
        builder_version="2",
        tasks=names,
        sources=[SOURCE],
        tables=tables,
        parameters=parameters,
        overwrite=overwrite,
    )
    progress("done", len(names) + 1, len(names) + 1)
    return edition
