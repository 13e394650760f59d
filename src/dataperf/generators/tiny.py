"""``tiny``: a randomly initialised Stable Diffusion pipeline, built in memory — a test generator.

It runs the real diffusers code path (tokenizer, text encoder, UNet, VAE, scheduler) at 64 x 64
pixels in a few steps, with nothing downloaded: its weights are drawn from a fixed seed, so its
images are deterministic noise, not pictures. It is for tests and demos and says so: its model
name, and every image it makes, is labelled a test generator.

The tokenizer is CLIP's, byte-level, with a vocabulary of every byte symbol (alone and ending a
word) and no merges, built in memory: it tokenizes any text, character by character, a prompt
that spells a special token (``<|endoftext|>``) included.
"""

from __future__ import annotations

import functools
from typing import Any

from dataperf.generators.diffusion import DiffusionGenerator, require_diffusers

MODEL = "tiny-random-diffusion (test generator)"
#: Seed of the random weights: every process builds the same pipeline.
WEIGHTS_SEED = 0
START, END = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 77
WIDTH = 32


class TinyDiffusion(DiffusionGenerator):
    """The tiny test pipeline; ``steps`` and ``size`` may be changed for experiments."""

    test_generator = True

    def __init__(self, *, steps: int = 4, size: int = 64, device: str = "cpu"):
        require_diffusers("tiny")
        super().__init__(steps=steps, size=size, device=device, guidance=None)
        self.model = MODEL

    def pipeline(self) -> Any:
        return _pipeline(self.device)


def tokenizer() -> Any:
    """CLIP's byte-level tokenizer with a character vocabulary (no merges)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [START, END, *symbols, *(symbol + "</w>" for symbol in symbols)]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(tokens)}, merges=[],
                         model_max_length=MAX_TOKENS, split_special_tokens=True)


@functools.cache
def _pipeline(device: str) -> Any:
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    words = tokenizer()
    state = torch.random.get_rng_state()
    torch.manual_seed(WEIGHTS_SEED)
    try:
        unet = UNet2DConditionModel(
            block_out_channels=(WIDTH, 2 * WIDTH), layers_per_block=1, sample_size=32,
            in_channels=4, out_channels=4, cross_attention_dim=WIDTH, norm_num_groups=WIDTH,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        )
        vae = AutoencoderKL(
            block_out_channels=(WIDTH, 2 * WIDTH), in_channels=3, out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4, norm_num_groups=WIDTH, sample_size=64,
        )
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(words), hidden_size=WIDTH, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, max_position_embeddings=MAX_TOKENS,
            bos_token_id=words.bos_token_id, eos_token_id=words.eos_token_id,
            pad_token_id=words.pad_token_id,
        ))
    finally:
        torch.random.set_rng_state(state)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe: Any = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=words,
                                   scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
