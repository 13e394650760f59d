"""Text-to-image pipelines of the diffusers library, run in this process.

:class:`DiffusionGenerator` runs any pipeline that takes a prompt, a number of images per prompt,
a torch generator, steps and a size (Stable Diffusion and its kin); a model's safety checker, if
it has one, blocks images. :class:`LocalDiffusion` (the ``diffusers`` generator) loads the
pipeline an operator keeps in a local folder, once per process and device, never from the
network.
"""

from __future__ import annotations

import functools
import importlib.util
from abc import abstractmethod
from pathlib import Path
from typing import Any

from dataperf.generators import (
    GENERATION_EXTRA_ADVICE,
    GeneratedImage,
    GenerationError,
    Generator,
    GeneratorUnavailableError,
)

#: Special tokens a CLIP tokenizer knows even when its vocabulary did not load.
_SPECIAL_TOKENS = 3


def require_diffusers(what: str) -> None:
    """Raise :class:`GeneratorUnavailableError` unless torch, diffusers and transformers are."""
    for module in ("torch", "diffusers", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise GeneratorUnavailableError(
                f"the {what} generator needs the package {module!r}, which is not installed; "
                f"{GENERATION_EXTRA_ADVICE}"
            )


def torch_device(device: str) -> str:
    """``auto`` is the first GPU where there is one, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GeneratorUnavailableError(f"device {device!r} was configured, but no GPU is visible")
    return device


class DiffusionGenerator(Generator):
    """A diffusers pipeline run with ``steps`` denoising steps at ``size`` x ``size`` pixels."""

    def __init__(self, *, steps: int, size: int, device: str, guidance: float | None):
        if not isinstance(steps, int) or not 1 <= steps <= 200:
            raise GenerationError(f"steps must be an integer in [1, 200], not {steps!r}")
        if not isinstance(size, int) or size < 8 or size % 8 or size > 2048:
            raise GenerationError(f"size must be a multiple of 8 in [8, 2048], not {size!r}")
        self.steps, self.size, self.guidance = steps, size, guidance
        self.device = device

    @abstractmethod
    def pipeline(self) -> Any:
        """The pipeline, loaded once per process."""

    def _generate(self, prompt: str, count: int, seed: int) -> list[GeneratedImage]:
        import torch

        pipe = self.pipeline()
        options: dict[str, Any] = {}
        if self.guidance is not None:
            options["guidance_scale"] = self.guidance
        with torch.inference_mode():
            out = pipe(
                prompt,
                num_images_per_prompt=count,
                num_inference_steps=self.steps,
                height=self.size,
                width=self.size,
                generator=torch.Generator(device="cpu").manual_seed(seed),
                output_type="pil",
                **options,
            )
        flags = getattr(out, "nsfw_content_detected", None) or [False] * len(out.images)
        return [self.image(picture, refused=bool(flag))
                for picture, flag in zip(out.images, flags, strict=True)]


class LocalDiffusion(DiffusionGenerator):
    """A pipeline saved in the folder ``path`` (``save_pretrained`` layout), named ``model``.

    ``device`` is ``auto`` (a GPU where there is one), ``cpu`` or ``cuda[:n]``. Loading reads
    only local files; a folder whose tokenizer knows nothing but its special tokens is refused.
    """

    def __init__(
        self,
        *,
        path: str | Path,
        model: str | None = None,
        device: str = "auto",
        steps: int = 30,
        size: int = 512,
        guidance: float | None = None,
    ):
        require_diffusers("diffusers")
        folder = Path(path).expanduser()
        if not (folder / "model_index.json").is_file():
            raise GeneratorUnavailableError(
                f"no diffusers pipeline in {folder} (it has no model_index.json); configure "
                "the folder of a pipeline saved with save_pretrained"
            )
        super().__init__(steps=steps, size=size, device=torch_device(device), guidance=guidance)
        self.path = folder.resolve()
        self.model = model or folder.name

    def pipeline(self) -> Any:
        return _load(str(self.path), self.device)


@functools.cache
def _load(path: str, device: str) -> Any:
    import diffusers
    import torch
    import transformers

    diffusers.utils.logging.disable_progress_bar()  # loading bars would fill the worker's log
    transformers.utils.logging.disable_progress_bar()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(path, local_files_only=True,
                                                           dtype=dtype)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise GeneratorUnavailableError(f"the pipeline in {path} does not load: {err}") from err
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = getattr(pipe, name, None)
        if tokenizer is None:
            continue
        if len(tokenizer) <= _SPECIAL_TOKENS:
            raise GeneratorUnavailableError(
                f"the {name} in {path} knows only its {len(tokenizer)} special tokens: its "
                "vocabulary files are missing, so every prompt would read as empty"
            )
        tokenizer.split_special_tokens = True  # a prompt's "<|endoftext|>" is text, not an end
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
