"""Build the offline edition of vision selection from real images.

Images are Fashion-MNIST (the Debian package ``dataset-fashion-mnist``). Each image is embedded
with the pretrained Open-NSFW network (its 1024-d global-average-pool layer; the network never
saw Fashion-MNIST), and the embeddings are reduced to 256 dimensions by a PCA fitted on the pool.

* Pool: ``pool_size`` images of the train split, stratified by class (so every concept has
  positives even in tiny builds), unlabelled.
* Tests: per concept, ``test_size`` images of the t10k split, a share ``TEST_POSITIVE_SHARE`` of
  them positive and the rest drawn from all other classes; the test sets of the tasks are
  disjoint, so every test image has one row and one ID.
* Examples: ``n_examples`` random positive pool images per concept.
* Weak labels: an imperfect annotator (multinomial logistic regression on 7x7 average-pooled
  pixels, trained on a small set of train images outside the pool, with some label noise) gives
  every pool image a confidence per concept.
* IDs: opaque 16-character hex strings from the seeded generator; they carry no index or label.

Everything is drawn from ``numpy`` generators spawned from ``seed``; a build is reproducible bit
for bit on one machine. The raw network embeddings are cached (keyed by the network, the source
file and the image indices), so rebuilding with other parameters does not rerun the network.
"""

from __future__ import annotations

from dataperf.challenges.vision_selection.build.annotator import (
    ANNOTATOR_CONFUSIONS,
    pooled_pixels,
    train_annotator,
)
from dataperf.challenges.vision_selection.build.cache import (
    load_chunks,
    store_chunk,
)
from dataperf.challenges.vision_selection.build.edition import (
    build,
    build_by_hand,
    write_reported,
)
from dataperf.challenges.vision_selection.build.embedding import (
    BGR_MEAN,
    EMBEDDING_DIM,
    RAW_DIM,
    Embedder,
    EmbeddingCache,
    fit_pca,
    network_input,
)
from dataperf.challenges.vision_selection.build.plan import (
    Plan,
    make_plan,
)
from dataperf.challenges.vision_selection.build.sources import (
    BUILDER_VERSION,
    CLASS_NAMES,
    CONCEPT_CLASSES,
    CONCEPTS,
    DEFAULT_SOURCE,
    POOL_SPLIT,
    SOURCES,
    SPLITS,
    TEST_POSITIVE_SHARE,
    TEST_SPLIT,
    Progress,
    Split,
    read_idx_images,
    read_idx_labels,
    read_split,
)
from dataperf.challenges.vision_selection.build.tables import (
    sorted_table,
)

__all__ = [
    "ANNOTATOR_CONFUSIONS",
    "BGR_MEAN",
    "BUILDER_VERSION",
    "CLASS_NAMES",
    "CONCEPTS",
    "CONCEPT_CLASSES",
    "DEFAULT_SOURCE",
    "EMBEDDING_DIM",
    "POOL_SPLIT",
    "RAW_DIM",
    "SOURCES",
    "SPLITS",
    "TEST_POSITIVE_SHARE",
    "TEST_SPLIT",
    "Embedder",
    "EmbeddingCache",
    "Plan",
    "Progress",
    "Split",
    "build",
    "build_by_hand",
    "fit_pca",
    "load_chunks",
    "make_plan",
    "network_input",
    "pooled_pixels",
    "read_idx_images",
    "read_idx_labels",
    "read_split",
    "sorted_table",
    "store_chunk",
    "train_annotator",
    "write_reported",
]
