"""A pipeline with Stable Diffusion 1.5's shapes and random weights, for benchmarks only.

It has the real SD 1.5 UNet, VAE and CLIP text-encoder configs (about 1.07 billion
parameters, 4.3 GB in fp32), so loading it, moving it and running a step cost what the
real model costs; only the pictures are noise. The configs are written out here, as in
the model's `*/config.json` files, so nothing is downloaded. The tokenizer is the demo's
character-level one (the real BPE vocabulary is a download); the text encoder's shapes
other than its vocabulary embedding are SD 1.5's.

Too big for the tests; `bench/` builds it once under var/.
"""

from pathlib import Path

from .demo import build_random_pipeline

UNET_CONFIG = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": (
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}

VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

TEXT_ENCODER_CONFIG = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}


def build_sd15_shaped_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """Build the SD1.5-shaped pipeline with random weights (seeded); save it to `directory`."""
    return build_random_pipeline(
        directory,
        seed=seed,
        unet_config=UNET_CONFIG,
        vae_config=VAE_CONFIG,
        text_encoder_config=TEXT_ENCODER_CONFIG,
    )
