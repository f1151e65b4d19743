"""Training the demo model on the procedural world (generation/engine/world.py).

`manage.py train_demo_model` runs `train_demo_model`; its output is the pipeline that
generation/engine/demo.py ships (demo_weights/) and `install_demo_model` installs. Done once
by a maintainer, never at `make run` or in CI. The same diffusers/transformers classes as
Stable Diffusion 1.5: a CLIPTokenizer (a word-level vocabulary of the world, with every
character as a fallback so any prompt tokenizes), a CLIPTextModel, an AutoencoderKL and a
UNet2DConditionModel, with SD 1.5's noise schedule rescaled (below).

The order matters (docs/performance.md, "The demo model"):

1. The VAE alone, on rendered pictures, until decode(encode(x)) is close to x colour by
   colour (`vae_errors`): flat colours and sharp edges need a near-exact reconstruction,
   or every colour the UNet learns comes out shifted.
2. The pictures are encoded once (the posterior's mean), and the latents' spread sets the
   VAE's scaling_factor (unit variance, as SD 1.5's 0.18215 was chosen).
3. The text encoder and the UNet together, on those latents, with captions that leave out
   the position or the size a quarter of the time each and an empty caption a tenth of the
   time (classifier-free guidance). Offset noise (a per-picture, per-channel constant added
   to the noise) teaches the UNet to choose the overall colour itself: without it the
   latent's mean leaks through SD's schedule at t = 999 and the colours drift.

The noise schedule is SD 1.5's rescaled to (nearly) zero terminal SNR, with v-prediction
(Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed"): SD 1.5's
schedule leaves 0.068 of the picture in the noisiest latent, and in 16 × 16 latents that
is enough to see where the shape is, so a UNet trained on it read the position from the
noise and never from the caption (docs/performance.md, "Why position is not learnt").
The betas are written into the scheduler config (`trained_betas`), so that every sampler
the engine offers (PNDM, DDIM, Euler, DPM++, LMS) follows the same schedule.

Deterministic: every draw comes from generators seeded from `seed` (same seed and thread
count, same weights). No Django here.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .world import (
    BASE_SHAPES,
    COLOURS,
    POSITIONS,
    SIZES,
    Spec,
    caption,
    render,
    sample_specs,
    training_caption,
)

# The world's words, one token each; anything else falls back to characters.
WORLD_WORDS = ["a", "on", "background", ",", *SIZES, *COLOURS, *BASE_SHAPES, *POSITIONS]
_CHARS = [chr(code) for code in range(33, 127)]
MAX_TOKENS = 32

TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "max_position_embeddings": MAX_TOKENS,
    "projection_dim": 64,
}

# 64 px pictures -> 16 × 16 × 4 latents (two halvings, factor 4). With three (8 × 8), a
# small shape was 2 × 2 latent pixels and the VAE lost its colour and outline (errors of
# 26-53 of 255 after 800 steps); at factor 4 it is 4 × 4 and comes back nearly exact.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (16, 32, 64),
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "layers_per_block": 1,
    "latent_channels": 4,
    # Few groups: a GroupNorm whose groups are single channels (16 groups of 16 channels)
    # takes away each picture's per-channel mean, and with it a flat colour; with 4+
    # channels a group, the colour survives as the difference between channels.
    "norm_num_groups": 4,
    "sample_size": 64,
}

# 16 × 16 latents: plain convolutions at 16 × 16, cross-attention at 8 × 8 and 4 × 4 (and
# in the mid block), so every latent pixel sees the prompt and, through the lower levels,
# the whole picture (where the shape is). Attention at 16 × 16 too cost twice as much a
# training step for this 2-core CPU's budget.
UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 64,
    "attention_head_dim": 4,
    # As in the VAE: 4+ channels a group, so the UNet can set a picture's overall colour.
    "norm_num_groups": 8,
}


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    pictures_seed: int = 0  # continue_demo_model: the first run's seed (its pictures)
    pictures: int = 6000  # rendered once; the VAE and the UNet draw from them
    vae_steps: int = 1500
    vae_batch: int = 8
    vae_lr: float = 1e-3
    unet_steps: int = 3000
    unet_batch: int = 32
    unet_lr: float = 1e-3
    warmup: int = 100
    noise_offset: float = 0.15
    uncond: float = 0.1  # share of empty captions
    threads: int = 1  # on a shared 2-core box, 2 threads wait on each other
    checkpoint_every: int = 500  # the pipeline so far, saved under out/checkpoint
    # A share of each batch's timesteps drawn from the noisiest ones only (from
    # high_noise_from to 999): where the picture does not yet show where the shape is, so
    # only the caption can say it (docs/performance.md, "The demo model"). 0: uniform.
    high_noise: float = 0.0
    high_noise_from: int = 700
    # Low-frequency noise: this much of a 2 × 2 and of a 4 × 4 noise, upsampled to the
    # latent's size, added to the noise (then scaled back to unit variance). SD 1.5's
    # schedule leaves a signal of 0.07 at t = 999, and a large flat shape in 16 × 16
    # latents still shows through it, so the UNet learnt to read the position from the
    # noisy latent and never from the caption; this noise hides where the shape is at the
    # noisiest steps (as offset noise hides the overall colour). 0: none.
    blob_noise: float = 0.0
    # The share of the picture left in the noisiest latent (t = 999), with v-prediction;
    # None: SD 1.5's schedule (0.068) and epsilon prediction, as the first demo model.
    terminal_signal: float | None = 0.01
    # A trained demo model's folder whose VAE (and its scaling_factor) is taken as it is,
    # instead of training one: the UNet and text encoder are trained from scratch on it.
    vae_from: str | None = None


def demo_betas(terminal_signal: float) -> list[float]:
    """SD 1.5's scaled-linear betas, rescaled so that sqrt(alpha_bar) keeps its first
    value and falls linearly-shifted to `terminal_signal` at the last step (Lin et al.'s
    algorithm 1, which goes to exactly 0; a small signal keeps the Euler-type samplers'
    largest sigma finite)."""
    from .demo import SCHEDULER_CONFIG

    sd15: dict[str, Any] = SCHEDULER_CONFIG
    steps = int(sd15["num_train_timesteps"])
    betas = np.linspace(float(sd15["beta_start"]) ** 0.5, float(sd15["beta_end"]) ** 0.5, steps,
                        dtype=np.float64) ** 2
    root = np.sqrt(np.cumprod(1.0 - betas))
    first, last = root[0], root[-1]
    root = (root - last) * (first - terminal_signal) / (first - last) + terminal_signal
    alpha_bar = root ** 2
    alphas = np.concatenate([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return [float(value) for value in 1.0 - alphas]


def scheduler_config(config: TrainConfig) -> dict[str, Any]:
    """The noise schedule the demo model is trained with and ships in its scheduler config."""
    from .demo import SCHEDULER_CONFIG

    if config.terminal_signal is None:
        return dict(SCHEDULER_CONFIG)
    return {**SCHEDULER_CONFIG, "trained_betas": demo_betas(config.terminal_signal),
            "prediction_type": "v_prediction", "timestep_spacing": "trailing",
            # As SD 1.5's own config: DDIM would otherwise clip the predicted latent to ±1.
            "clip_sample": False}


def write_world_tokenizer(directory: Path) -> Any:
    """Write vocab.json and merges.txt of a CLIPTokenizer whose words are the world's
    (one token each: the merges build each word from its end) and whose fallback is single
    characters; return it."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for token in [*_CHARS, *(char + "</w>" for char in _CHARS)]:
        vocab[token] = len(vocab)
    merges: list[str] = []
    for word in WORLD_WORDS:
        if len(word) == 1:
            continue
        suffix = word[-1] + "</w>"
        for char in reversed(word[:-1]):
            merge = f"{char} {suffix}"
            if merge not in merges:
                merges.append(merge)
            suffix = char + suffix
            # Every suffix is a token: BPE stops at tokens that are in the vocabulary.
            vocab.setdefault(suffix, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                         model_max_length=MAX_TOKENS)


def build_components(directory: Path, seed: int) -> dict[str, Any]:
    """Untrained tokenizer, text encoder, VAE and UNet of the demo shapes, seeded."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = write_world_tokenizer(directory / "tokenizer")
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
        **TEXT_ENCODER_CONFIG))
    vae = AutoencoderKL(**VAE_CONFIG)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "unet": unet}


def pictures_tensor(specs: Sequence[Spec]) -> Any:
    """The rendered specs as a float tensor N × 3 × 64 × 64 in [-1, 1]."""
    import torch

    array = np.stack([np.asarray(render(spec), dtype=np.uint8) for spec in specs])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1


def _lr(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_vae(vae: Any, pictures: Any, config: TrainConfig,
              log: Callable[[str], None]) -> None:
    """Reconstruction (L1 + MSE on pixels) with a tiny KL term, batches drawn seeded."""
    import torch

    # A narrow posterior from the start: a random quant_conv gives every latent a standard
    # deviation of ~1 against means of ~0.2, and the decoder would learn from noise.
    channels = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[channels:] = 0
        vae.quant_conv.bias[channels:] = -10.0
    generator = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    vae.train()
    started = time.monotonic()
    for step in range(config.vae_steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config.vae_steps, config.vae_lr, config.warmup)
        index = torch.randint(0, len(pictures), (config.vae_batch,), generator=generator)
        x = pictures[index]
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(
            posterior.mean.shape, generator=generator)
        out = vae.decode(z).sample
        kl = posterior.kl().mean() / (x[0].numel())
        loss = (out - x).abs().mean() + ((out - x) ** 2).mean() + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == config.vae_steps - 1:
            log(f"vae step {step} loss {loss.item():.4f} "
                f"({time.monotonic() - started:.0f} s)")
    vae.eval()


def vae_errors(vae: Any, specs: Sequence[Spec]) -> dict[str, float]:
    """Mean absolute error (0–255) of decode(encode(x)) against x, per colour: over the
    pixels of pictures whose background is that colour, and over their shape pixels."""
    import torch

    pictures = pictures_tensor(specs)
    with torch.no_grad():
        out = vae.decode(vae.encode(pictures).latent_dist.mean).sample.clamp(-1, 1)
    error = ((out - pictures).abs() * 127.5).mean(dim=1)  # N × 64 × 64
    sums: dict[str, list[float]] = {name: [] for name in COLOURS}
    for spec, picture_error, picture in zip(specs, error, pictures, strict=True):
        target = torch.tensor(COLOURS[spec.background], dtype=torch.float32) / 127.5 - 1
        background = (picture - target[:, None, None]).abs().amax(dim=0) < 0.02
        sums[spec.background].append(float(picture_error[background].mean()))
        if (~background).any():
            sums[spec.colour].append(float(picture_error[~background].mean()))
    return {name: float(np.mean(values)) if values else math.nan
            for name, values in sums.items()}


def encode_latents(vae: Any, pictures: Any, batch: int = 256) -> Any:
    import torch

    chunks = []
    with torch.no_grad():
        for start in range(0, len(pictures), batch):
            chunks.append(vae.encode(pictures[start:start + batch]).latent_dist.mean)
    return torch.cat(chunks)


def _with_blob_noise(noise: Any, amount: float, generator: Any) -> Any:
    """`noise` plus `amount` of 2 × 2 and 4 × 4 noise upsampled (bilinear) to its size,
    scaled so that each value keeps the variance it had."""
    import torch
    import torch.nn.functional as F  # noqa: N812 -- torch's own name for it

    size = noise.shape[-2:]
    total = noise
    for cells in (2, 4):
        low = torch.randn((*noise.shape[:2], cells, cells), generator=generator)
        low = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        total = total + amount * low / low.std()
    return total * (noise.std() / total.std())


def train_unet(unet: Any, text_encoder: Any, tokenizer: Any, latents: Any,
               specs: Sequence[Spec], config: TrainConfig,
               log: Callable[[str], None], schedule: dict[str, Any],
               checkpoint: Callable[[int], None] | None = None) -> None:
    """Denoising (v or epsilon, as `schedule` says) with offset noise, the text encoder
    trained with the UNet; captions drop position/size now and then, or are empty."""
    import torch
    from diffusers import DDPMScheduler

    scheduler: Any = DDPMScheduler(**{
        key: value for key, value in schedule.items()
        if key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps",
                   "trained_betas", "prediction_type")})
    v_prediction = scheduler.config.prediction_type == "v_prediction"
    generator = torch.Generator().manual_seed(config.seed + 2)
    rng = random.Random(config.seed + 3)  # noqa: S311 -- reproducible captions
    parameters = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.unet_lr, weight_decay=1e-2)
    unet.train()
    text_encoder.train()
    started = time.monotonic()
    running = 0.0
    for step in range(config.unet_steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config.unet_steps, config.unet_lr, config.warmup)
        index = torch.randint(0, len(latents), (config.unet_batch,), generator=generator)
        captions = [
            "" if rng.random() < config.uncond else training_caption(specs[i], rng)
            for i in index.tolist()
        ]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        states = text_encoder(ids)[0]
        x = latents[index]
        noise = torch.randn(x.shape, generator=generator)
        noise = noise + config.noise_offset * torch.randn(
            (x.shape[0], x.shape[1], 1, 1), generator=generator)
        if config.blob_noise > 0:
            noise = _with_blob_noise(noise, config.blob_noise, generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (x.shape[0],),
                          generator=generator)
        if config.high_noise > 0:
            high = round(config.high_noise * x.shape[0])
            t[:high] = torch.randint(config.high_noise_from,
                                     scheduler.config.num_train_timesteps, (high,),
                                     generator=generator)
        noisy = scheduler.add_noise(x, noise, t)
        prediction = unet(noisy, t, encoder_hidden_states=states).sample
        target = scheduler.get_velocity(x, noise, t) if v_prediction else noise
        loss = ((prediction - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0 or step == config.unet_steps - 1:
            log(f"unet step {step} loss {running:.4f} ({time.monotonic() - started:.0f} s)")
        if checkpoint is not None and step % config.checkpoint_every == 0 and step > 0:
            unet.eval()
            text_encoder.eval()
            checkpoint(step)
            unet.train()
            text_encoder.train()
    unet.eval()
    text_encoder.eval()


def assemble_pipeline(components: dict[str, Any], schedule: dict[str, Any]) -> Any:
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        unet=components["unet"], vae=components["vae"],
        text_encoder=components["text_encoder"], tokenizer=components["tokenizer"],
        scheduler=PNDMScheduler.from_config(schedule), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )


def judge_pipeline(pipeline: Any, specs: Sequence[Spec], seeds: Sequence[int], *,
                   steps: int = 20, guidance: float = 5.0, size: int = 64,
                   batch: int = 25) -> dict[str, float]:
    """Generate each spec's caption with each seed (DDIM) and return the share of images
    in which the judge reads each quality the caption names."""
    import torch
    from diffusers import DDIMScheduler

    from .judge import judge

    pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    hits: dict[str, list[bool]] = {}
    jobs = [(spec, seed) for seed in seeds for spec in specs]
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        generators = [torch.Generator().manual_seed(seed) for _, seed in chunk]
        images = pipeline([caption(spec) for spec, _ in chunk], num_inference_steps=steps,
                          guidance_scale=guidance, height=size, width=size,
                          generator=generators).images
        for (spec, _), image in zip(chunk, images, strict=True):
            for key, ok in judge(image).agrees(spec).items():
                hits.setdefault(key, []).append(ok)
    return {key: float(np.mean(values)) for key, values in hits.items()}


def train_demo_model(out: Path, config: TrainConfig,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the demo model into `out` (a diffusers folder, fp32); return the figures."""
    import torch

    torch.set_num_threads(config.threads)
    out = Path(out)
    started = time.monotonic()
    components = build_components(out, config.seed)
    specs = sample_specs(config.seed, config.pictures)
    pictures = pictures_tensor(specs)
    log(f"rendered {len(specs)} pictures ({time.monotonic() - started:.0f} s)")
    if config.vae_from is not None:
        from diffusers import AutoencoderKL

        components["vae"] = AutoencoderKL.from_pretrained(
            str(Path(config.vae_from) / "vae"), torch_dtype=torch.float32)
        components["vae"].eval()
        scaling = float(components["vae"].config.scaling_factor)
        latents = encode_latents(components["vae"], pictures)
    else:
        train_vae(components["vae"], pictures, config, log)
        latents = encode_latents(components["vae"], pictures)
        scaling = round(float(1 / latents.std()), 5)
        components["vae"].register_to_config(scaling_factor=scaling)
    errors = vae_errors(components["vae"], sample_specs(config.seed + 100, 400))
    log("vae error per colour (0-255): " + ", ".join(f"{k} {v:.1f}" for k, v in errors.items()))
    latents = latents * scaling
    log(f"latents encoded, scaling_factor {scaling} ({time.monotonic() - started:.0f} s)")
    vae_seconds = time.monotonic() - started
    schedule = scheduler_config(config)
    pipeline = assemble_pipeline(components, schedule)

    def checkpoint(step: int) -> None:
        pipeline.save_pretrained(out / "checkpoint")
        (out / "checkpoint" / "step.txt").write_text(f"{step}\n")
        log(f"checkpoint at step {step}")

    train_unet(components["unet"], components["text_encoder"], components["tokenizer"],
               latents, specs, config, log, schedule, checkpoint)
    pipeline.save_pretrained(out)
    seconds = time.monotonic() - started
    log(f"trained in {seconds:.0f} s (vae and encoding {vae_seconds:.0f} s)")
    return {"seconds": seconds, "vae_errors": errors, "scaling_factor": scaling}


def continue_demo_model(start: Path, out: Path, config: TrainConfig,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the text encoder and UNet of the demo model in `start` (a folder
    train_demo_model wrote) config.unet_steps more, on the same pictures (config.seed's)
    and its VAE's latents, with batches and captions drawn from config.seed's generators
    (use another seed than the first run's); save the pipeline into `out`."""
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(config.threads)
    out = Path(out)
    started = time.monotonic()
    pipeline: Any = StableDiffusionPipeline.from_pretrained(
        str(start), safety_checker=None, requires_safety_checker=False,
        torch_dtype=torch.float32)
    specs = sample_specs(config.pictures_seed, config.pictures)
    latents = encode_latents(pipeline.vae, pictures_tensor(specs))
    latents = latents * pipeline.vae.config.scaling_factor
    log(f"latents of {len(specs)} pictures encoded ({time.monotonic() - started:.0f} s)")

    def checkpoint(step: int) -> None:
        pipeline.save_pretrained(out / "checkpoint")
        (out / "checkpoint" / "step.txt").write_text(f"{step}\n")
        log(f"checkpoint at step {step}")

    train_unet(pipeline.unet, pipeline.text_encoder, pipeline.tokenizer, latents, specs,
               config, log, dict(pipeline.scheduler.config), checkpoint)
    pipeline.save_pretrained(out)
    seconds = time.monotonic() - started
    log(f"trained on in {seconds:.0f} s")
    return {"seconds": seconds}
