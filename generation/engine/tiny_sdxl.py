"""A tiny SDXL-shaped pipeline with random weights, built locally, for the tests.

SDXL's weights cannot be downloaded where the tests run, so this builds the real SDXL
component classes at toy sizes: a UNet2DConditionModel with SDXL's "text_time" added
embedding (size and crop conditioning), its first block without attention and more
transformer layers lower down; two text encoders, a CLIPTextModel and a
CLIPTextModelWithProjection (whose pooled, projected output feeds the added embedding),
of different widths as SDXL's are (768 and 1280 there, 32 and 64 here: the single-file
loader tells them apart by width); an AutoencoderKL; SDXL's Euler scheduler. The
tokenizers are the demo model's character-level one. It draws noise, at 64 px in well
under a second on a CPU.

`write_original_checkpoint` (checkpoints.py) writes it as an SDXL single file in the
original key layout (conditioner.embedders.0/1), carrying these configs.

No Django here.
"""

import json
from pathlib import Path
from typing import Any

from .checkpoints import CONFIGS

TEXT_ENCODER: dict[str, Any] = {"hidden_size": 32, "intermediate_size": 64,
                                "num_attention_heads": 4, "num_hidden_layers": 2,
                                "projection_dim": 32}
TEXT_ENCODER_2: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128,
                                  "num_attention_heads": 4, "num_hidden_layers": 2,
                                  "projection_dim": 32}
TIME_EMBED_DIM = 8  # per number: 6 numbers (original size, crop, target size)

UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "transformer_layers_per_block": (1, 2),
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "norm_num_groups": 8,
    # SDXL's conditioning: both encoders' hidden states side by side...
    "cross_attention_dim": TEXT_ENCODER["hidden_size"] + TEXT_ENCODER_2["hidden_size"],
    # ...and the pooled text with the six size numbers, as an added embedding.
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": TIME_EMBED_DIM,
    "projection_class_embeddings_input_dim": 6 * TIME_EMBED_DIM
    + TEXT_ENCODER_2["projection_dim"],
}

VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "block_out_channels": (16, 32, 32),
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 64,
    "scaling_factor": 0.13025,
    "force_upcast": True,  # as SDXL's own VAE: its fp16 decode overflows
}

def build_tiny_sdxl_pipeline(directory: str | Path, seed: int = 0) -> Any:
    """Build the tiny StableDiffusionXLPipeline with random weights (seeded), save it as a
    diffusers folder in `directory` and return it."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from .demo import write_char_tokenizer

    torch.manual_seed(seed)
    folder = Path(directory)
    tokenizer = write_char_tokenizer(folder / "tokenizer")
    tokenizer_2 = write_char_tokenizer(folder / "tokenizer_2")
    vocab = tokenizer.get_vocab()

    def text_config(shape: dict[str, Any]) -> Any:
        return CLIPTextConfig(vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"],
                              eos_token_id=vocab["<|endoftext|>"],
                              pad_token_id=vocab["<|endoftext|>"], max_position_embeddings=77,
                              hidden_act="gelu", **shape)

    pipeline = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**VAE),
        text_encoder=CLIPTextModel(text_config(TEXT_ENCODER)),
        text_encoder_2=CLIPTextModelWithProjection(text_config(TEXT_ENCODER_2)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=UNet2DConditionModel(**UNET),
        # SDXL base 1.0's own scheduler config, as shipped.
        scheduler=EulerDiscreteScheduler.from_config(json.loads(
            (CONFIGS / "sdxl" / "scheduler" / "scheduler_config.json").read_text())),
    )
    pipeline.save_pretrained(folder)  # type: ignore[attr-defined]
    return pipeline


def build_sdxl_shaped_pipeline(directory: str | Path, device: str = "cuda",
                               seed: int = 0) -> Path:
    """SDXL base 1.0's shapes (the shipped configs/sdxl: a 2.6 billion parameter UNet, both
    text encoders, the VAE) with random weights, made on `device` in fp16 and saved as a
    diffusers folder, for `make gpu-check` (bench/gpu_check.py): what a real SDXL costs
    to load and run, noise for pictures. CLIP's tokenizers are built from open-clip-torch's
    BPE file, as for a single file. Returns the folder."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from .checkpoints import TOKENIZER_PADDING
    from .clip_tokenizer import write_clip_tokenizer

    configs, folder = CONFIGS / "sdxl", Path(directory)
    torch.manual_seed(seed)

    def read(name: str) -> dict[str, Any]:
        return json.loads((configs / name).read_text())

    tokenizers = {name: CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(
        folder / name, pad_token=TOKENIZER_PADDING["sdxl", name])))
        for name in ("tokenizer", "tokenizer_2")}
    with torch.device(device):
        parts = {
            "unet": UNet2DConditionModel.from_config(read("unet/config.json")),
            "vae": AutoencoderKL.from_config(read("vae/config.json")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_json_file(
                str(configs / "text_encoder" / "config.json"))),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig.from_json_file(
                str(configs / "text_encoder_2" / "config.json"))),
        }
    for part in parts.values():
        part.to(torch.float16)
    scheduler = EulerDiscreteScheduler.from_config(read("scheduler/scheduler_config.json"))
    pipeline = StableDiffusionXLPipeline(scheduler=scheduler, **parts, **tokenizers)
    pipeline.save_pretrained(folder)  # type: ignore[attr-defined]
    return folder
