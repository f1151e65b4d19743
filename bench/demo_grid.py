"""The README's opening picture: a grid of what the demo model draws, with its prompts.

    .venv/bin/python bench/demo_grid.py [--out docs/demo-grid.png] [--threads N]

Twelve prompts of the shapes world, one picture each (seed 1, 20 steps, guidance 1.5, the
model's own scheduler) through the engine's PipelineCache on the committed demo model
(`manage.py create_demo_model` installs the same), each shown at 128 px with its prompt
under it. Takes a minute on a CPU.
"""

import argparse
import sys
from pathlib import Path

import benchlib

PROMPTS = [
    "a red circle on a white background",
    "a small blue square on a yellow background, left",
    "a large green triangle on a black background, centre",
    "a yellow circle on a purple background, top",
    "a small white square on a red background, bottom",
    "a purple triangle on a yellow background, right",
    "a large orange circle on a green background",
    "a black square on a white background, top",
    "a small red triangle on a blue background, left",
    "a white circle on a black background, right",
    "a large blue triangle on a yellow background",
    "a green square on a purple background, bottom",
]
CELL, TEXT, COLUMNS = 128, 34, 4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=benchlib.ROOT / "docs" / "demo-grid.png")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from PIL import Image, ImageDraw, ImageFont

    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache

    model = benchlib.demo_model()
    params = [GenerationParams(prompt, width=64, height=64, steps=20, guidance_scale=1.5,
                               seed=1) for prompt in PROMPTS]
    images = PipelineCache().generate(model, params)
    rows = (len(PROMPTS) + COLUMNS - 1) // COLUMNS
    width = COLUMNS * (CELL + 2 * 8) + 8
    grid = Image.new("RGB", (width, rows * (CELL + TEXT + 8) + 8), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for index, (prompt, image) in enumerate(zip(PROMPTS, images, strict=True)):
        column, row = index % COLUMNS, index // COLUMNS
        left, top = 8 + column * (CELL + 16), 8 + row * (CELL + TEXT + 8)
        grid.paste(image.resize((CELL, CELL), Image.Resampling.NEAREST), (left, top))
        # The prompt, wrapped to the cell's width.
        words, lines, line = prompt.split(), [], ""
        for word in words:
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) > CELL + 12 and line:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
        for number, text in enumerate(lines[:3]):
            draw.text((left, top + CELL + 2 + 11 * number), text, fill="black", font=font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(PROMPTS)} prompts)", file=sys.stderr)


if __name__ == "__main__":
    main()
