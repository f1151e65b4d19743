"""The demo model: a tiny Stable Diffusion pipeline with random weights, built locally.

Model weights cannot be downloaded everywhere Imagineer runs (CI, air-gapped boxes), so
tests, CI and `make run` use this pipeline: the real diffusers code path with weights
small enough for a CPU. It draws noise-like pictures, not art. No Django imports here.
"""

import json
from pathlib import Path

# A character-level CLIP vocabulary: every printable ASCII character, alone and as a
# word end, plus the two special tokens. merges.txt is empty, so BPE never merges.
_CHARS = [chr(code) for code in range(32, 127)]


def write_char_tokenizer(directory):
    """Write vocab.json and merges.txt of a character-level CLIPTokenizer; return it."""
    from transformers import CLIPTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for char in _CHARS:
            vocab[char + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=77
    )


# Stable Diffusion 1.5's noise schedule (its scheduler/scheduler_config.json), used by
# the demo model too so that its schedulers behave like the real model's.
SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}

# Laid out like SD 1.5's UNet, shrunk: attention at the full latent resolution (and in the
# mid block), plain convolutions below. A LoRA on the attention projections then reaches
# the pixels it predicts; with attention at the lower resolution only (the first layout),
# training barely moved the loss (docs/performance.md, "How much the demo model learns").
# diffusers reads attention_head_dim as the number of heads: with two, a 64 px image costs
# ~15% more than with the first layout; more heads learn a little more but cost far more.
DEMO_UNET_CONFIG = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 32,
    "attention_head_dim": 2,
    "norm_num_groups": 32,
}

DEMO_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 64,
}

DEMO_TEXT_ENCODER_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": 77,
    "projection_dim": 32,
}


def build_demo_pipeline(directory, seed=0):
    """Build the tiny pipeline with random weights (seeded) and save it to `directory`."""
    return build_random_pipeline(
        directory,
        seed=seed,
        unet_config=DEMO_UNET_CONFIG,
        vae_config=DEMO_VAE_CONFIG,
        text_encoder_config=DEMO_TEXT_ENCODER_CONFIG,
        settle_vae=True,
    )


def _settle_vae(vae, seed):
    """Give a random VAE the two traits of a trained one that training relies on.

    Its posterior is narrow: a random quant_conv gives every latent a standard deviation
    of about 1 against means of about 0.24, so the latents sampled for training were mostly
    noise and the training pictures hardly showed in them. And its scaling factor makes
    latents about unit variance (how SD 1.5's 0.18215 was chosen), measured here on seeded
    random pictures.
    """
    import torch

    channels = vae.config.latent_channels
    with torch.no_grad():
        # quant_conv's second half of outputs is the log-variance: a variance of e^-10 everywhere.
        vae.quant_conv.weight[channels:] = 0
        vae.quant_conv.bias[channels:] = -10.0
        generator = torch.Generator().manual_seed(seed)
        pictures = torch.rand((8, 3, 32, 32), generator=generator) * 2 - 1
        spread = vae.encode(pictures).latent_dist.mean.std()
    vae.register_to_config(scaling_factor=round(float(1 / spread), 5))


def build_random_pipeline(directory, *, seed, unet_config, vae_config, text_encoder_config,
                          settle_vae=False):
    """Build a StableDiffusionPipeline of the given shapes with random weights (seeded), the
    character-level tokenizer and SD 1.5's scheduler, and save it to `directory`.

    settle_vae: give the VAE a narrow posterior and a unit-variance scaling factor (see
    _settle_vae()), so that training sees the pictures in the latents.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = write_char_tokenizer(directory / "tokenizer")
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            **text_encoder_config,
        )
    )
    unet = UNet2DConditionModel(**unet_config)
    vae = AutoencoderKL(**vae_config)
    if settle_vae:
        _settle_vae(vae, seed)
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)  # type: ignore[attr-defined]
    return pipeline
