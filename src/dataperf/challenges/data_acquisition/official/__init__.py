"""Import the original DataPerf v0.5 data-acquisition (DAM) files as an ``official`` edition.

The original layout (the challenge repository after unzipping ``marketinfo.zip``, plus the
sellers' data that only the organizers had), for every market ``i`` (``0``, ``1``, ...)::

    marketinfo/i/price/budget.txt         the buyer's budget: one number
    marketinfo/i/price/price.txt          one line per seller: Lin,<full price> (lines
                                          after the last seller's are not read)
    marketinfo/i/sellerid.txt             the seller IDs 0..S-1, one per line (0.0 is fine)
    marketinfo/i/data_buyer/20.csv        the buyer's rows: no header; features..., label
    marketinfo/i/summary/<id>.csv.json    {"row_number": n, "column_number": d + 1,
                                           "hist": {feature: {"0_size": .., "0_range": ..}},
                                           "label_correlation": {feature: r}}
    marketinfo/i/summary/<id>.csvsamples.csv  sample rows, space-separated: features..., label
    features/i/<id>.csv                   the seller's rows: no header; features..., label

Every CSV file is read as the original reads it (``pandas.read_csv(path, header=None)``):
there is no header line, and a first line of names is refused rather than taken for a row.

Seller ``s`` of the edition is the seller with ID ``s``; its price is line ``s`` of
``price.txt`` (as the original ``Dam.getsellerinfo`` reads it) and submissions list counts in
this order. (The original evaluator pairs the s-th count with the s-th file its ``glob`` lists
in ``features/i/``, which is ID order only where the file system lists files so.) Only linear
pricing existed: the original's price function ignores the word before the comma and prices
``max_price * k / n`` whatever it says; we accept ``lin`` in any case (the original files read
``Lin``) and refuse other words, which would promise a pricing the original never applied.

Test rows: the original evaluator trained on the bought rows and scored accuracy on the buyer's
own rows (``data_buyer/20.csv``), so the hidden test rows of the imported edition are the
buyer's rows, and the public buyer rows are the same rows.

Labels: the distinct label values of all files, sorted, become class indices 0, 1, ...; the
class names are the values as written by ``format(value, 'g')`` (``0``, ``1``, ``2``) and are
recorded in the manifest's parameters. Embeddings are stored as float64, the numbers the
original trains on, so that the official profile reproduces it exactly. Every seller's rows
are its own rows of the shared table (the original sellers shared none); the summaries and
samples are imported as given (a correlation the original wrote as NaN becomes 0), after
checking that they agree with the sellers' rows in number of rows and features.
"""

from __future__ import annotations

from dataperf.challenges.data_acquisition.official.edition import (
    FEATURES,
    MARKETS,
    SOURCE,
    import_official,
)

__all__ = ["FEATURES", "MARKETS", "SOURCE", "import_official"]
