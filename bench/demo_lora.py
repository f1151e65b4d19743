"""Can a LoRA teach the demo model a shape it never saw (issue 15)? Train one, then judge.

    .venv/bin/python bench/demo_lora.py [--threads 1] [--steps 200] [--rank 16] [--lr 5e-3]
        [--batch 4] [--convolutions]

An album of 16 large rings (generation/engine/world.py, seed 15) captioned with the
trigger word where the shape's name stands ("a red zxq on a orange background"), trained
by training.trainer.train_lora at 64 px on the committed demo model; then 8 ring prompts
(seed 99, one image each, 20 steps, guidance 1.5) through the engine's PipelineCache with
and without the LoRA, read by the judge. --convolutions trains the ResNets' conv1/conv2
too (the trainer's train_convolutions), not only attention: the 16 × 16 level of the demo
UNet, where a ring's hole is drawn, has plain convolutions and no attention.

Prints the training seconds (wall and this process's CPU), the loss of the first and last
fifth of the steps, and a table: the share of pictures the judge reads as a ring, and in
the prompted colour and background, with and without the LoRA.
"""

import benchlib

TRIGGER = "zxq"


def main():
    import argparse
    import sys
    import tempfile
    import time
    from dataclasses import replace
    from pathlib import Path

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--steps", type=int, default=200)
    extra.add_argument("--rank", type=int, default=16)
    extra.add_argument("--lr", type=float, default=5e-3)
    extra.add_argument("--batch", type=int, default=4)
    extra.add_argument("--convolutions", action="store_true")
    own, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    benchlib.arguments(__doc__.splitlines()[0])

    import training.trainer as trainer
    from generation.engine.judge import judge
    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache
    from generation.engine.world import caption, render, sample_specs

    model = benchlib.demo_model()
    folder = Path(tempfile.mkdtemp(prefix="demo-lora-"))
    album = [replace(spec, size="large") for spec in sample_specs(15, 16, shapes=("ring",))]
    examples = []
    for index, spec in enumerate(album):
        path = folder / f"ring-{index}.png"
        render(spec).save(path)
        examples.append(trainer.Example(path, caption(spec, shape_word=TRIGGER, size=False,
                                                      position=False)))
    config = trainer.TrainingConfig(rank=own.rank, alpha=own.rank, learning_rate=own.lr,
                                    steps=own.steps, batch_size=own.batch, resolution=64,
                                    trigger_word=TRIGGER, seed=7,
                                    train_convolutions=own.convolutions)
    wall, cpu = time.monotonic(), time.process_time()
    result = trainer.train_lora(model, examples, folder / "lora", config)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    losses = [loss for _, loss in result.losses]
    fifth = max(len(losses) // 5, 1)
    print(f"training: {wall:.0f} s wall, {cpu:.0f} s CPU; loss first fifth "
          f"{sum(losses[:fifth]) / fifth:.4f}, last fifth {sum(losses[-fifth:]) / fifth:.4f}")

    prompts = [replace(spec, size="large")
               for spec in sample_specs(99, 8, shapes=("ring",), jitter=0)]
    cache = PipelineCache()
    rows = []
    for name, loras in (("with the LoRA", [("ring", str(result.lora_path), 1.0)]),
                        ("without", [])):
        params = [GenerationParams(caption(spec, shape_word=TRIGGER, size=False,
                                           position=False), width=64, height=64, steps=20,
                                   guidance_scale=1.5, seed=1) for spec in prompts]
        readings = [judge(image) for image in cache.generate(model, params, loras=loras)]
        counts = [sum(r.shape == "ring" for r in readings),
                  sum(r.colour == s.colour for r, s in zip(readings, prompts, strict=True)),
                  sum(r.background == s.background
                      for r, s in zip(readings, prompts, strict=True))]
        rows.append([name, *(f"{n}/{len(prompts)}" for n in counts)])
    benchlib.print_table(
        f"Ring LoRA ({own.steps} steps, batch {own.batch}, rank {own.rank}, lr {own.lr}, "
        f"targets {trainer.target_modules(config)}), 8 prompts, 20 steps, guidance 1.5",
        ["", "judge reads a ring", "colour as prompted", "background as prompted"], rows)


if __name__ == "__main__":
    main()
