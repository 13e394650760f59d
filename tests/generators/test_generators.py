"""Text-to-image generators: the interface's checks, the ``tiny`` pipeline on the real diffusers
code path, a pipeline folder loaded by ``diffusers``, an image service over real HTTP on
loopback, uploads, a round's mix, and the registry."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

import dataperf.plugins
from dataperf.generators import (
    GROUP,
    MAX_IMAGES,
    GeneratedImage,
    GenerationError,
    Generator,
    GeneratorNotFoundError,
    GeneratorUnavailableError,
    generator,
    generator_names,
)
from dataperf.generators.mix import GeneratorMix, RoundGenerators, prompt_seed

pytest.importorskip("diffusers", reason="the generation extra is not installed")

from dataperf.generators.tiny import MODEL, TinyDiffusion, tokenizer


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def noise(size: int = 16, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


class Fixed(Generator):
    """Hands out the pictures it was given (None: refused), for the interface's checks."""

    def __init__(self, pictures: list[Image.Image | None], model: str = "fixed") -> None:
        self.pictures, self.model = pictures, model
        self.calls: list[tuple[str, int, int]] = []

    def _generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        self.calls.append((prompt, count, seed))
        return [self.image(p) if p is not None else self.blocked("refused")
                for p in self.pictures[:count]]


# The interface --------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "count", "seed", "says"), [
    ("", 1, 0, "empty"), ("   ", 1, 0, "empty"), ("x" * 2001, 1, 0, "2001 characters"),
    ("a cat", 0, 0, "1 to 12"), ("a cat", MAX_IMAGES + 1, 0, "1 to 12"),
    ("a cat", 1, -1, "seed"), ("a cat", 1, 2**63, "seed"), ("a cat", True + 0.5, 0, "1 to 12"),
])
def test_bad_requests_are_refused_in_plain_words(prompt, count, seed, says):
    fixed = Fixed([noise()])
    with pytest.raises(GenerationError, match=says):
        fixed.generate(prompt, count, seed)
    assert fixed.calls == []


def test_blank_and_black_images_are_blocked_and_pngs_carry_no_metadata():
    black = Image.new("RGB", (32, 32))
    grey = Image.new("RGB", (32, 32), (120, 120, 121))
    images = Fixed([black, grey, noise(), None]).generate("a cat", 4, 0)
    assert [i.blocked is not None for i in images] == [True, True, False, True]
    assert "blank" in (images[0].blocked or "")
    assert images[3].blocked == "refused"
    with Image.open(io.BytesIO(images[2].png or b"")) as shown:
        assert shown.format == "PNG"
        assert not shown.info.get("exif")


def test_a_generator_answering_the_wrong_number_of_images_is_an_error():
    with pytest.raises(GenerationError, match="gave 1 images instead of 2"):
        Fixed([noise()]).generate("a cat", 2, 0)


def test_an_image_has_a_png_or_a_reason():
    with pytest.raises(ValueError, match="either a PNG or a blocked reason"):
        GeneratedImage("m", None)
    with pytest.raises(ValueError, match="either a PNG or a blocked reason"):
        GeneratedImage("m", b"png", "blocked")


# tiny: the real diffusers path ----------------------------------------------------------------


def test_the_tiny_tokenizer_really_tokenizes():
    words = tokenizer()
    ids = words("A red apple!").input_ids
    assert ids[0] == words.bos_token_id
    assert ids[-1] == words.eos_token_id
    assert len(ids) == 12
    assert words.unk_token_id not in ids[1:-1]
    assert words.decode(ids, skip_special_tokens=True) == "a red apple !"
    assert len(words) > 500  # every byte, alone and ending a word; not just special tokens
    assert words("<|endoftext|> cat").input_ids.count(words.eos_token_id) == 1  # typed: text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60))
def test_the_tiny_tokenizer_knows_every_character(text):
    words = tokenizer()
    ids = words(text).input_ids
    special = {words.bos_token_id, words.eos_token_id}
    assert not special & set(ids[1:-1])  # nothing became "unknown" (CLIP's unk is its end)
    if text.split():  # some visible character: some token
        assert len(ids) > 2


@pytest.fixture(scope="module")
def tiny() -> TinyDiffusion:
    return TinyDiffusion()


def test_tiny_is_deterministic_by_seed_and_labelled_a_test_generator(tiny):
    first = tiny.generate("a red apple", 2, 7)
    again = TinyDiffusion().generate("a red apple", 2, 7)
    other = tiny.generate("a red apple", 2, 8)
    assert [i.png for i in first] == [i.png for i in again]
    assert [i.png for i in first] != [i.png for i in other]
    assert first[0].png != first[1].png  # one prompt, several images
    assert all(i.model == MODEL and i.test_generator and i.blocked is None for i in first)
    assert "test generator" in MODEL
    with Image.open(io.BytesIO(first[0].png or b"")) as shown:
        assert shown.size == (64, 64)


def test_tiny_hears_the_prompt(tiny):
    assert tiny.generate("a red apple", 1, 3)[0].png != tiny.generate("a blue car", 1, 3)[0].png


def test_building_tiny_leaves_the_global_random_state_alone():
    import torch

    from dataperf.generators import tiny as module

    module._pipeline.cache_clear()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    TinyDiffusion().pipeline()
    assert torch.equal(torch.rand(3), expected)


# diffusers: a pipeline folder -----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tiny: TinyDiffusion, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pipelines") / "tiny-saved"
    tiny.pipeline().save_pretrained(folder)
    return folder


def test_a_saved_pipeline_gives_the_same_images(tiny, saved):
    local = generator("diffusers", path=str(saved), device="cpu", steps=4, size=64)
    assert local.model == "tiny-saved"
    assert not local.test_generator
    assert [i.png for i in local.generate("a red apple", 2, 7)] == [
        i.png for i in tiny.generate("a red apple", 2, 7)]


def test_a_folder_without_a_pipeline_is_refused(tmp_path):
    with pytest.raises(GeneratorUnavailableError, match=r"no model_index\.json"):
        generator("diffusers", path=str(tmp_path))


def test_a_tokenizer_without_its_vocabulary_is_refused(saved, tmp_path):
    """Offline, a tokenizer whose vocabulary files are gone loads with its special tokens only
    and reads every prompt as empty: the folder is refused instead."""
    import shutil

    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (broken / "tokenizer" / name).unlink(missing_ok=True)
    local = generator("diffusers", path=str(broken), device="cpu", steps=1, size=64)
    with pytest.raises(GeneratorUnavailableError):
        local.generate("a red apple", 1, 0)


@pytest.mark.parametrize(("settings", "says"), [
    ({"steps": 0}, "steps"), ({"size": 60}, "multiple of 8"), ({"size": 4096}, "multiple of 8"),
])
def test_diffusion_settings_are_checked(saved, settings, says):
    with pytest.raises(GenerationError, match=says):
        generator("diffusers", path=str(saved), device="cpu", **settings)


# http: an image service on loopback -----------------------------------------------------------


class Service:
    """A real HTTP server whose answers the test scripts: ``answers`` is a list of
    (status, body or callable(request) -> body, delay seconds), used in turn."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any, float]] = []
        self.requests: list[dict[str, Any]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                status, answer, delay = service.answers.pop(0) if service.answers else (
                    500, {"error": "no answer scripted"}, 0)
                if delay:
                    threading.Event().wait(delay)
                payload = answer(body) if callable(answer) else answer
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/generate"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service()
    yield running
    running.close()


def images_of(count: int, **extra: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        items = [{"png": base64.b64encode(png(noise(seed=body["seed"] + k))).decode()}
                 for k in range(count)]
        return {"model": "service-model", "images": items, **extra}
    return answer


def http(service: Service, **settings: Any) -> Generator:
    return generator("http", url=service.url, backoff=0.01, **settings)


def test_the_service_contract(service):
    service.answers = [(200, images_of(2), 0)]
    images = http(service, token="s3cret").generate("a cat", 2, 11)
    assert service.requests == [{"body": {"prompt": "a cat", "count": 2, "seed": 11},
                                 "auth": "Bearer s3cret"}]
    assert [i.model for i in images] == ["service-model"] * 2
    assert all(i.png and i.blocked is None and not i.test_generator for i in images)


def test_blocked_items_and_per_image_models(service):
    answer = {"images": [{"blocked": "nsfw filter"},
                         {"png": base64.b64encode(png(noise())).decode(), "model": "m2"}]}
    service.answers = [(200, answer, 0)]
    blocked, shown = http(service, model="configured").generate("a cat", 2, 0)
    assert (blocked.blocked, blocked.model) == ("nsfw filter", "configured")
    assert (shown.model, shown.blocked) == ("m2", None)


def test_a_refusal_shows_the_services_message(service):
    service.answers = [(400, {"error": "prompt violates the policy"}, 0)]
    with pytest.raises(GenerationError, match="refused the prompt: prompt violates the policy"):
        http(service).generate("a cat", 1, 0)
    assert len(service.requests) == 1  # a refusal is not retried


def test_busy_and_failing_services_are_retried(service):
    service.answers = [(503, b"busy", 0), (429, b"slow down", 0), (200, images_of(1), 0)]
    assert http(service, retries=2).generate("a cat", 1, 0)[0].png
    assert len(service.requests) == 3


def test_a_service_that_stays_down_is_reported_in_plain_words(service):
    service.answers = [(502, b"", 0)] * 3
    with pytest.raises(GenerationError, match=r"unavailable: it answered HTTP 502 \(3 tries\)"):
        http(service, retries=2).generate("a cat", 1, 0)


def test_a_slow_service_times_out(service):
    service.answers = [(200, images_of(1), 1.0)]
    with pytest.raises(GenerationError, match=r"did not answer within 0.2 s \(1 try\)"):
        http(service, timeout=0.2, retries=0).generate("a cat", 1, 0)


def test_an_unreachable_service_is_reported():
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    gone = generator("http", url=f"http://127.0.0.1:{port}/", retries=0)
    with pytest.raises(GenerationError, match="could not be reached"):
        gone.generate("a cat", 1, 0)


@pytest.mark.parametrize(("answer", "says"), [
    (b"<html>oops</html>", "not JSON"),
    ({"pictures": []}, "no list of images"),
    ({"images": ["x"]}, "image 0 is not an object"),
    ({"images": [{"png": "not base64!"}]}, "image 0 is not base64"),
    ({"images": [{"png": base64.b64encode(b"GIF89a....").decode()}]}, "not a PNG, JPEG"),
    ({"images": [{}]}, "neither a 'png' nor a 'blocked'"),
    ({"images": []}, "gave 0 images instead of 1"),
    ({"model": "", "images": [{"blocked": "x"}]}, "model"),
])
def test_broken_answers_are_explained(service, answer, says):
    service.answers = [(200, answer, 0)]
    with pytest.raises(GenerationError, match=says):
        http(service).generate("a cat", 1, 0)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "not a url", "http:///nohost"])
def test_bad_service_urls_are_refused(url):
    with pytest.raises(GenerationError, match="http"):
        generator("http", url=url)


# upload ---------------------------------------------------------------------------------------


def test_an_upload_is_kept_as_a_png_without_metadata():
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    out = io.BytesIO()
    noise(40).save(out, format="JPEG", exif=exif)
    upload = generator("upload")
    assert upload.takes_uploads
    kept = upload.accept(out.getvalue(), " my-model v2 ")  # type: ignore[attr-defined]
    assert kept.model == "my-model v2"
    assert kept.blocked is None
    with Image.open(io.BytesIO(kept.png or b"")) as shown:
        assert shown.format == "PNG"
        assert "exif" not in shown.info
    with pytest.raises(GenerationError, match="upload the image"):
        upload.generate("a cat", 1, 0)


@pytest.mark.parametrize(("data", "model", "says"), [
    (b"", "m", "empty"), (b"x" * (10 * 2**20 + 1), "m", "10.0 MB"),
    (b"not an image", "m", "not a PNG"), (None, "", "name the model"),
    (None, "\x1b[31m", "printable"), (None, "m" * 101, "at most 100"),
])
def test_bad_uploads_are_refused(data, model, says):
    with pytest.raises(GenerationError, match=says):
        generator("upload").accept(png(noise()) if data is None else data, model)  # type: ignore[attr-defined]


def test_a_blank_upload_is_refused():
    with pytest.raises(GenerationError, match="the image is blank"):
        generator("upload").accept(png(Image.new("RGB", (32, 32), (9, 9, 9))), "m")  # type: ignore[attr-defined]


def test_a_huge_image_is_refused_before_it_is_decoded():
    out = io.BytesIO()
    Image.new("L", (5000, 10)).save(out, format="PNG")
    with pytest.raises(GenerationError, match="5000 x 10 pixels"):
        generator("upload").accept(out.getvalue(), "m")  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_an_upload(data):
    with contextlib.suppress(GenerationError):  # a clear refusal, nothing else
        generator("upload").accept(data, "m")  # type: ignore[attr-defined]


# A round's mix --------------------------------------------------------------------------------


def test_round_configurations_are_checked():
    RoundGenerators(generators=[{"name": "tiny"}], images_per_prompt=12)
    for bad in ({"generators": []}, {"generators": [{"name": "tiny", "weight": 0}]},
                {"generators": [{"name": "tiny"}], "images_per_prompt": 13},
                {"generators": [{"name": "tiny"}, {"name": "tiny"}]},
                {"generators": [{"name": "tiny", "colour": "red"}]}):
        with pytest.raises(ValidationError):
            RoundGenerators.model_validate(bad)


def test_prompt_seeds_are_stable_and_personal():
    assert prompt_seed(7, "a cat") == prompt_seed("7", " a cat ")
    assert prompt_seed(7, "a cat") != prompt_seed(8, "a cat")
    assert 0 <= prompt_seed("p", "q") < 2**63
    digest = hashlib.sha256(b"1\x00a cat").digest()  # the same in every process
    assert prompt_seed(1, "a cat") == int.from_bytes(digest[:8], "big") >> 1


def test_a_mix_draws_models_by_weight_and_asks_each_once(plugins):
    a, b = Fixed([noise(seed=k) for k in range(12)], "a"), Fixed(
        [noise(seed=k + 50) for k in range(12)], "b")
    plugins(EntryPoint("model-a", "tests:a", GROUP), EntryPoint("model-b", "tests:b", GROUP),
            made={"tests:a": lambda: a, "tests:b": lambda: b})
    mix = GeneratorMix(RoundGenerators(generators=[{"name": "model-a", "weight": 3},
                                                   {"name": "model-b"}], images_per_prompt=12))
    shown = mix.generate("a cat", 99)
    slots = mix.draw(99)
    assert [i.model for i in shown] == [["a", "b"][s] for s in slots]
    assert len(a.calls) == len(b.calls) == 1
    assert a.calls[0][1] + b.calls[0][1] == 12
    assert [i.png for i in mix.generate("a cat", 99)] == [i.png for i in shown]
    counts = np.bincount(np.concatenate([mix.draw(s) for s in range(300)]), minlength=2)
    assert 0.7 < counts[0] / counts.sum() < 0.8  # weight 3 of 4


def test_uploads_are_not_mixed_with_generation():
    with pytest.raises(GenerationError, match="uploads or generates"):
        GeneratorMix(RoundGenerators(generators=[{"name": "upload"}, {"name": "tiny"}]))


# The registry ---------------------------------------------------------------------------------


real_load = EntryPoint.load


@pytest.fixture
def plugins(monkeypatch):
    """``plugins(point, ..., made={value: object})``: entry points for this test."""

    def install(*points: EntryPoint, made: dict[str, Any] | None = None) -> None:
        objects = made or {}
        monkeypatch.setattr(dataperf.plugins, "entry_points",
                            lambda group: [p for p in points if p.group == group])
        monkeypatch.setattr(EntryPoint, "load", lambda self: objects[self.value]
                            if self.value in objects else real_load(self))

    install()
    return install


def test_builtins_are_registered(plugins):
    assert generator_names() == ["diffusers", "http", "tiny", "upload"]


def test_unknown_names_get_a_hint(plugins):
    with pytest.raises(GeneratorNotFoundError, match=r"did you mean 'tiny'\?"):
        generator("tiyn")


def test_an_entry_point_gets_the_operators_settings(plugins):
    plugins(EntryPoint("mine", "tests:mine", GROUP),
            made={"tests:mine": lambda **s: Fixed([noise()], model=s["model"])})
    made = generator("mine", model="studio-v1")
    assert made.model == "studio-v1"
    assert "mine" in generator_names()


def test_an_entry_point_that_is_not_a_generator_is_refused(plugins):
    plugins(EntryPoint("odd", "tests:odd", GROUP), made={"tests:odd": lambda: object()})
    with pytest.raises(GenerationError, match="not a Generator"):
        generator("odd")


def test_the_operator_guide_example_runs(capsys):
    guide = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "dataperf.generators" in b]
    exec(compile(block, "operator-guide.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("tiny-random-diffusion (test generator)") == 4
    assert printed.rstrip().endswith("[None, None, None, None]")
