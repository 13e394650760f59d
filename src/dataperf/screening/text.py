"""The built-in text screener: the offensive-language model of ``alt-profanity-check``."""

from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.screening import (
    FLAG_THRESHOLD,
    SCREENING_EXTRA_ADVICE,
    ScreenerUnavailableError,
    TextScreener,
    require_package,
)

__all__ = ["ProfanityCheck"]

NAME = "profanity-check"
PACKAGE = "alt-profanity-check"
MODULE = "profanity_check"


class ProfanityCheck(TextScreener):
    """Offensive or profane language, from the PyPI package ``alt-profanity-check`` (MIT).

    A calibrated linear SVM on TF-IDF word counts, trained on about 200k human-labelled tweets
    (Davidson et al., 2017) and Wikipedia comments (Jigsaw's toxic comment challenge). It keys on
    words, so it catches explicit prompts but rarely the implicitly unsafe ones that red-teaming
    is about. Each release of the package is trained with the scikit-learn release of the same
    number; a model saved by another scikit-learn is refused.
    """

    def __init__(self, *, threshold: float = FLAG_THRESHOLD):
        super().__init__(threshold=threshold)
        require_package(MODULE, PACKAGE, NAME)

    def _predict(self, items: list[str]) -> np.ndarray:
        vectorizer, model = _model()
        unsafe = list(model.classes_).index(1)
        return np.asarray(model.predict_proba(vectorizer.transform(items))[:, unsafe])


@functools.cache
def _model() -> tuple[Any, Any]:
    """The package's (vectorizer, classifier), read from its data files.

    Importing ``profanity_check`` would load them too, but without a way to refuse a model
    pickled by another scikit-learn than the one installed.
    """
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise ScreenerUnavailableError(
            f"the package {PACKAGE!r} is not installed; {SCREENING_EXTRA_ADVICE}"
        )
    data = Path(spec.origin).parent / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(data / "vectorizer.joblib"), joblib.load(data / "model.joblib")
        except InconsistentVersionWarning as mismatch:
            raise ScreenerUnavailableError(
                f"the model of {PACKAGE!r} was saved with scikit-learn "
                f"{mismatch.original_sklearn_version} but {mismatch.current_sklearn_version} is "
                f"installed; install the {PACKAGE} release of the installed scikit-learn's "
                f"number (`pip install '{PACKAGE}=={mismatch.current_sklearn_version}'`)"
            ) from None
        except OSError as err:
            raise ScreenerUnavailableError(
                f"the model files of {PACKAGE!r} are unreadable ({err}); reinstall it with "
                f"`pip install --force-reinstall {PACKAGE}`"
            ) from None
