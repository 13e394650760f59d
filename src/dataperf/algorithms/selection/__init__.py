"""Participant-side training-data selection algorithms by their public names, one family a module.

In a selection challenge the model is frozen and participants choose its training data: from a
pool of N embedded, unlabelled items they pick at most ``budget`` rows and give each a label.
Algorithms see a :class:`SelectionTask` (pool embeddings, a few known examples, and weak machine
labels with per-class confidence from an imperfect annotator) and return a :class:`Selection`.

Every algorithm follows the scikit-learn contract: the constructor only stores hyper-parameters,
:meth:`select` validates them, turns ``random_state`` into a :class:`numpy.random.Generator`
and does the work; the result is deterministic for a given ``random_state``. Nothing here builds
a dense N x N matrix: whole-pool passes run over float32 blocks, and the expensive steps (k-NN
graphs, farthest-point sampling, model fits) run on candidate subsets whose size caps are stated
in each class docstring, so a pool of 1,000,000 x 256 float16 rows fits in a few GiB.

:data:`dataperf.algorithms.selectors.SELECTORS` maps command-line names to the classes.
The helpers that other selector modules and the tests use are re-exported here too.
"""

from __future__ import annotations

from dataperf.algorithms.selection._helpers import _allocate as _allocate
from dataperf.algorithms.selection._helpers import _argmax_labels as _argmax_labels
from dataperf.algorithms.selection._helpers import _prior_matched as _prior_matched
from dataperf.algorithms.selection._helpers import _proba as _proba
from dataperf.algorithms.selection._helpers import _rows as _rows
from dataperf.algorithms.selection._helpers import _unique_examples as _unique_examples
from dataperf.algorithms.selection.balanced_random import RandomSelector
from dataperf.algorithms.selection.base import Selector
from dataperf.algorithms.selection.confidence import ConfidenceSelector
from dataperf.algorithms.selection.facility_location import FacilityLocationSelector
from dataperf.algorithms.selection.fpscv import FPSCVSelector
from dataperf.algorithms.selection.pseudo_label import PseudoLabelSelector
from dataperf.algorithms.selection.pseudo_label import _example_anchored as _example_anchored
from dataperf.algorithms.selection.synthetic import make_synthetic_task, score_selection
from dataperf.algorithms.selection.task import Selection, SelectionTask
from dataperf.algorithms.selection.uncertainty import UncertaintySelector

__all__ = [
    "ConfidenceSelector",
    "FPSCVSelector",
    "FacilityLocationSelector",
    "PseudoLabelSelector",
    "RandomSelector",
    "Selection",
    "SelectionTask",
    "Selector",
    "UncertaintySelector",
    "make_synthetic_task",
    "score_selection",
]
