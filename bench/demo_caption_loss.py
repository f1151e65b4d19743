"""Does the demo model use a caption's words? Its denoising loss with the right caption
against the same caption with one quality swapped, per timestep.

    .venv/bin/python bench/demo_caption_loss.py [--model DIR] [--count N] [--threads N]

Rendered pictures of the shapes world (a fixed seed, never the training pictures'; each
with a position and a size) are encoded by the model's VAE, noised at a few timesteps of
the model's own schedule with a seeded noise, and the UNet's loss (MSE against the noise,
or the velocity for a v-prediction model) is
measured with the true caption and with captions whose position, shape colour, background
or shape is another one (the same noise each time). A word the model ignores costs
nothing when it is wrong: its column stays at 1.00 (the swapped loss over the true one).
Position is decided at the noisiest timesteps, before the picture shows where the shape
is, so that is where its column should rise. Prints a Markdown table.
"""

import argparse
import random
from dataclasses import replace
from pathlib import Path

import benchlib

SEED = 2028
TIMESTEPS = (999, 950, 900, 800, 600, 400, 200)


def swapped(spec, key, rng):
    from generation.engine.world import BASE_SHAPES, COLOURS, POSITIONS

    choices = {"position": POSITIONS, "colour": tuple(COLOURS), "background": tuple(COLOURS),
               "shape": BASE_SHAPES}[key]
    taken = {spec.colour, spec.background} if key in ("colour", "background") else set()
    value = rng.choice([c for c in choices if c != getattr(spec, key) and c not in taken])
    return replace(spec, **{key: value})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a diffusers folder (default: demo_weights)")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from generation.engine.demo import DEMO_WEIGHTS
    from generation.engine.demo_training import pictures_tensor
    from generation.engine.world import caption, sample_specs

    torch.set_num_threads(args.threads)
    pipeline = StableDiffusionPipeline.from_pretrained(
        str(args.model or DEMO_WEIGHTS), safety_checker=None, requires_safety_checker=False,
        torch_dtype=torch.float32)
    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    v_prediction = scheduler.config.prediction_type == "v_prediction"
    specs = sample_specs(SEED, args.count, jitter=0)
    rng = random.Random(SEED)  # noqa: S311 -- reproducible swaps
    keys = ("position", "colour", "background", "shape")
    variants = {"true": specs, **{key: [swapped(s, key, rng) for s in specs] for key in keys},
                "no position": [replace(s, position=None) for s in specs]}

    def states(captions):
        ids = pipeline.tokenizer(captions, padding="max_length", truncation=True,
                                 max_length=pipeline.tokenizer.model_max_length,
                                 return_tensors="pt").input_ids
        return pipeline.text_encoder(ids)[0]

    with torch.no_grad():
        latents = pipeline.vae.encode(pictures_tensor(specs)).latent_dist.mean
        latents = latents * pipeline.vae.config.scaling_factor
        encoded = {name: states([caption(s) for s in group]) for name, group in variants.items()}
        encoded["empty"] = states([""] * len(specs))
        rows = []
        for t in TIMESTEPS:
            generator = torch.Generator().manual_seed(t)
            noise = torch.randn(latents.shape, generator=generator)
            steps = torch.full((len(specs),), t, dtype=torch.long)
            noisy = scheduler.add_noise(latents, noise, steps)
            target = scheduler.get_velocity(latents, noise, steps) if v_prediction else noise
            losses = {name: float(((pipeline.unet(noisy, steps, encoder_hidden_states=h).sample
                                    - target) ** 2).mean())
                      for name, h in encoded.items()}
            rows.append([str(t), f"{losses['true']:.4f}",
                         *(f"{losses[name] / losses['true']:.3f}"
                           for name in (*keys, "no position", "empty"))])
    benchlib.print_table(
        f"Denoising loss with the true caption, and with one word swapped over the true "
        f"({args.count} pictures, {args.model or 'demo_weights'})",
        ["t", "loss, true caption", "position swapped", "shape colour swapped",
         "background swapped", "shape swapped", "no position", "empty caption"], rows)


if __name__ == "__main__":
    main()
