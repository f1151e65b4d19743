"""The demo model: a tiny Stable Diffusion pipeline that draws the shapes world.

Model weights cannot be downloaded everywhere Imagineer runs (CI, air-gapped boxes), so
tests, CI and `make run` use a pipeline shipped in the repository: the real diffusers
classes with weights small enough for a CPU. It is trained by the project on a procedural
world (generation/engine/world.py, demo_training.py, `manage.py train_demo_model`): one
flat shape on a flat background, as "a small red circle on a blue background, top" says,
so tests can check what a picture shows (generation/engine/judge.py). 64 px shapes, not
photographs.

The trained weights are committed in demo_weights/ (fp16 safetensors) with SHA256SUMS:
`install_demo_model` checks every file against it and copies the folder into place (what
`manage.py create_demo_model` and the tests' fixtures do, in seconds); `ship_weights`
writes it. `build_demo_pipeline` builds the earlier random-weight model of other shapes,
for the few tests that need a second, different base model. No Django imports here.
"""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

# The committed, trained demo model (a diffusers folder) and the checksums of its files.
DEMO_WEIGHTS = Path(__file__).resolve().parent / "demo_weights"
SUMS_FILE = "SHA256SUMS"

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
# the random-weight pipelines; the trained demo model ships it rescaled to a near-zero
# terminal SNR (demo_training.scheduler_config).
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
    """Build a tiny pipeline with random weights (seeded) and save it to `directory`: it
    draws noise. Not the demo model (install_demo_model); a second, different base."""
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


class DemoWeightsError(Exception):
    """The committed demo weights are missing or do not match their SHA256SUMS."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shipped_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and path.name != SUMS_FILE)


def write_sums(folder: Path) -> Path:
    """Write folder/SHA256SUMS (`sha256  relative/path` a line) for every file in it."""
    lines = [f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}"
             for path in _shipped_files(folder)]
    sums = folder / SUMS_FILE
    sums.write_text("\n".join(lines) + "\n")
    return sums


def read_sums(folder: Path) -> dict[str, str]:
    """relative path -> sha256, from folder/SHA256SUMS."""
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise DemoWeightsError(f"{sums} is missing")
    entries: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.strip()] = digest
    return entries


def verify_weights(folder: Path = DEMO_WEIGHTS) -> dict[str, str]:
    """Check every file of `folder` against its SHA256SUMS (none missing, none extra, none
    changed); return the sums. Raises DemoWeightsError naming the first file that fails."""
    expected = read_sums(folder)
    present = {path.relative_to(folder).as_posix() for path in _shipped_files(folder)}
    if missing := sorted(set(expected) - present):
        raise DemoWeightsError(f"{folder}: {missing[0]} is missing")
    if extra := sorted(present - set(expected)):
        raise DemoWeightsError(f"{folder}: {extra[0]} is not in {SUMS_FILE}")
    for name, digest in expected.items():
        if file_sha256(folder / name) != digest:
            raise DemoWeightsError(f"{folder}: {name} does not match its sha256 in {SUMS_FILE}")
    return expected


def install_demo_model(directory: str | Path, source: Path = DEMO_WEIGHTS) -> Path:
    """Copy the trained demo model into `directory` (a diffusers folder), after checking
    its checksums. Atomic: a folder that exists is complete. Returns `directory`."""
    directory = Path(directory)
    verify_weights(source)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if directory.exists():
            # An empty folder (a test's tmp dir) is replaced; anything else is kept apart.
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def ship_weights(trained: str | Path, folder: Path = DEMO_WEIGHTS) -> dict[str, str]:
    """Save the trained pipeline in `trained` as the shipped demo model: fp16
    safetensors in `folder` (replaced), with SHA256SUMS. Returns the sums."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(
        str(trained), safety_checker=None, requires_safety_checker=False)
    pipeline.to(torch_dtype=torch.float16)
    shutil.rmtree(folder, ignore_errors=True)
    pipeline.save_pretrained(folder, safe_serialization=True)
    write_sums(folder)
    return read_sums(folder)
