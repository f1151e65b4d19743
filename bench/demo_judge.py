"""The demo model's meaning and cost: what the judge reads in its pictures, and what one costs.

    .venv/bin/python bench/demo_judge.py [--quick] [--threads N] [--guidance G]
        [--model DIR] [--count N] [--skip-cost]

Meaning: 100 prompts of the shapes world (sampled with a fixed seed, never the training
pictures' seed; each names colour, shape, background, position and size) × 2 seeds at
20 steps, through the engine's PipelineCache on the committed demo model; the judge
(generation/engine/judge.py) reads each picture, and the table gives the share in which it
reads each quality as prompted, with issue 15's goals. The same for prompts of the
combinations held out of training (world.HELD_OUT). Prompts without position or size
are scored on what they name.

Cost: seconds per image (batch of 1, 20 steps, the model's own scheduler) at 64 and
128 px, for the trained demo model and the random-weight demo model of earlier versions
(its shapes are kept here), in the same process. Prints Markdown tables for
docs/performance.md.
"""

import benchlib

PROMPT_SEED = 2026
HELD_OUT_SEED = 2027
GOALS = {"background": "≥ 90 %", "colour": "≥ 90 %", "position": "≥ 80 %",
         "shape": "≥ 70 %", "size": "—"}
LABELS = {"background": "background colour as prompted",
          "colour": "shape colour as prompted", "position": "position as prompted",
          "shape": "shape as prompted", "size": "size as prompted"}

# The demo model before issue 15: random weights of these shapes (generation/engine/demo.py
# then), kept to compare the cost of a picture.
RANDOM_DEMO_UNET = {
    "sample_size": 32, "in_channels": 4, "out_channels": 4, "block_out_channels": (32, 64),
    "layers_per_block": 1, "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32,
    "attention_head_dim": 2, "norm_num_groups": 32,
}
RANDOM_DEMO_VAE = {
    "in_channels": 3, "out_channels": 3, "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"), "latent_channels": 4,
    "norm_num_groups": 32, "sample_size": 64,
}
RANDOM_DEMO_TEXT = {
    "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
    "num_hidden_layers": 2, "max_position_embeddings": 77, "projection_dim": 32,
}


def trained_demo_model():
    """var/bench/demo-shapes: the committed trained demo model."""
    return benchlib.demo_model()


def random_demo_model():
    from generation.engine.demo import build_random_pipeline

    return benchlib.built("demo-random", lambda folder: build_random_pipeline(
        folder, seed=0, unet_config=RANDOM_DEMO_UNET, vae_config=RANDOM_DEMO_VAE,
        text_encoder_config=RANDOM_DEMO_TEXT, settle_vae=True))


def judged(cache, model, specs, seeds, *, steps=20, guidance=5.0, size=64, loras=(),
           shape_word=None, batch=20):
    """{quality: [hit, ...]} over every spec × seed, generated through the engine."""
    from generation.engine.judge import judge
    from generation.engine.params import GenerationParams
    from generation.engine.world import caption

    hits = {}
    jobs = [(spec, seed) for seed in seeds for spec in specs]
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        params = [GenerationParams(caption(spec, shape_word=shape_word), width=size,
                                   height=size, steps=steps, guidance_scale=guidance,
                                   seed=seed) for spec, seed in chunk]
        images = cache.generate(model, params, loras=loras)
        for (spec, _), image in zip(chunk, images, strict=True):
            for key, ok in judge(image).agrees(spec).items():
                hits.setdefault(key, []).append(ok)
    return hits


def share(values):
    if not values:
        return "—"
    return f"{100 * sum(values) / len(values):.0f} % ({sum(values)}/{len(values)})"


def meaning(cache, model, args):
    from generation.engine.world import sample_specs

    count = args.count or (20 if args.quick else 100)
    seeds = [1, 2]
    trained = judged(cache, model, sample_specs(PROMPT_SEED, count, jitter=0), seeds,
                     guidance=args.guidance)
    held = judged(cache, model, sample_specs(HELD_OUT_SEED, count // 4, held_out=True,
                                             jitter=0), seeds, guidance=args.guidance)
    rows = [[LABELS[key], GOALS[key], share(trained.get(key, [])), share(held.get(key, []))]
            for key in LABELS]
    benchlib.print_table(
        f"The demo model's pictures, read by the judge ({count} prompts × 2 seeds, 20 steps, "
        f"guidance {args.guidance})",
        ["what the judge reads", "goal", "prompts of trained combinations",
         f"held-out combinations ({count // 4} prompts × 2 seeds)"], rows)


def cost(cache, model, args):
    from generation.engine.params import GenerationParams

    repeats = 2 if args.quick else 5
    rows = []
    for name, folder in (("demo, trained (demo_weights/)", model),
                         ("demo, random weights (the default today)", random_demo_model())):
        row = [name]
        for size in (64, 128):
            def one(seed, folder=folder, size=size):
                return cache.generate(folder, GenerationParams(
                    "a small red circle on a blue background, top", width=size, height=size,
                    steps=20, seed=seed))
            one(0)  # load and warm up
            row.append(benchlib.summary([benchlib.timed(one, seed)[0]
                                         for seed in range(1, repeats + 1)]))
        rows.append(row)
    benchlib.print_table("Seconds per picture (20 steps, batch of 1, the model's scheduler)",
                         ["model", "64 px", "128 px"], rows)


def main():
    import argparse
    import sys

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--guidance", type=float, default=5.0)
    extra.add_argument("--skip-cost", action="store_true")
    extra.add_argument("--model", help="a diffusers folder to judge instead of demo_weights/ "
                       "(a training run's output)")
    extra.add_argument("--count", type=int, help="prompts (default 100, --quick 20)")
    own, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = benchlib.arguments(__doc__.splitlines()[0])
    args.guidance = own.guidance
    args.count = own.count

    from generation.engine.pipelines import PipelineCache

    model = own.model or trained_demo_model()
    cache = PipelineCache()
    meaning(cache, model, args)
    if not own.skip_cost:
        cost(cache, model, args)


if __name__ == "__main__":
    main()
