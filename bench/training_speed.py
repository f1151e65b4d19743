"""Training speed: LoRA training steps per second and peak memory, by model and resolution.

    .venv/bin/python bench/training_speed.py [--quick] [--threads N]

Cases: the tiny demo model at 64 px and the SD1.5-shaped model (random weights, the real
shapes) at 64 and 256 px on the CPU; with CUDA, also both on the GPU, SD1.5-shaped at
64 and 512 px.
Each case runs in a fresh child process, so its peak memory is its own: the peak resident
set (VmHWM) on the CPU, torch.cuda.max_memory_allocated on the GPU. Steps per
second leave out model loading and the first step (warm-up). Models are built once under
var/bench/. Prints a Markdown table for docs/performance.md.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "bench"

# (model, device, resolution, steps, quick steps)
CPU_CASES = [
    ("demo", "cpu", 64, 20, 6),
    ("sd15-shaped", "cpu", 64, 5, 3),
    ("sd15-shaped", "cpu", 256, 3, 2),
]
GPU_CASES = [
    ("demo", "cuda", 64, 50, 10),
    ("sd15-shaped", "cuda", 64, 30, 10),
    ("sd15-shaped", "cuda", 512, 30, 10),
]
RANK = 16
BATCH_SIZE = 1


def build_sd15_shaped(directory):
    """SD 1.5's UNet, VAE and text-encoder shapes with random weights, saved to directory.

    generation/engine/sd15_shaped.py builds the same model; this stands in for it until
    that module is on the branch this runs from.
    """
    try:
        from generation.engine.sd15_shaped import build_sd15_shaped_pipeline
    except ImportError:
        pass
    else:
        return build_sd15_shaped_pipeline(directory)

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.engine.demo import build_demo_pipeline

    # The demo pipeline (its tokenizer and scheduler) with SD 1.5-shaped models swapped in.
    pipeline = build_demo_pipeline(directory)
    # UNet2DConditionModel's defaults are SD 1.5's shapes but for the text width.
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        sample_size=512,
    )
    text_config = pipeline.text_encoder.config.to_dict()
    text_config.update(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                       num_hidden_layers=12, projection_dim=768)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    pipeline.register_modules(unet=unet, vae=vae, text_encoder=text_encoder)
    pipeline.save_pretrained(directory)


def model_dir(name):
    """var/bench/<name>, built on first use (in a staging folder, then renamed)."""
    import shutil

    from generation.engine.demo import build_demo_pipeline

    target = VAR / name
    if not target.exists():
        staging = VAR / f".{name}.building"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        print(f"building {name} under {target} (once) ...", file=sys.stderr, flush=True)
        {"demo": build_demo_pipeline, "sd15-shaped": build_sd15_shaped}[name](staging)
        staging.rename(target)
    return target


def training_images(folder, count=4, size=96):
    """A few striped pictures with captions."""
    from PIL import Image, ImageDraw

    from training.trainer import Example

    examples = []
    for index in range(count):
        image = Image.new("RGB", (size, size + 16 * index), "white")
        draw = ImageDraw.Draw(image)
        for left in range(index, size, 12):
            draw.rectangle([left, 0, left + 5, image.height], fill=(30, 60, 200))
        path = Path(folder) / f"stripes-{index}.png"
        image.save(path)
        examples.append(Example(path, f"blue stripes {index}"))
    return examples


def run_case(model, device, resolution, steps, threads):
    """Train one case in this process; return its figures as a dict."""
    import torch

    from training.trainer import TrainingConfig, train_lora

    if threads:
        torch.set_num_threads(threads)
    base = model_dir(model)
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        config = TrainingConfig(
            rank=RANK, alpha=RANK, learning_rate=1e-4, steps=steps, batch_size=BATCH_SIZE,
            resolution=resolution, seed=0, trigger_word="stripes",
        )
        started = time.perf_counter()
        train_lora(
            base, training_images(folder), Path(folder) / "lora", config, device=device,
            on_progress=lambda step, total: times.setdefault(step, time.perf_counter()),
        )
    timed_steps = steps - 1
    seconds = times[steps] - times[1]
    if device == "cpu":
        peak = peak_rss()
    else:
        peak = torch.cuda.max_memory_allocated()
    return {
        "model": model,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "resolution": resolution,
        "steps timed": timed_steps,
        "steps/s": timed_steps / seconds,
        "s/step": seconds / timed_steps,
        "load + first step (s)": times[1] - started,
        "peak memory (GiB)": peak / 2**30,
        "memory measured": "peak RSS" if device == "cpu" else "max CUDA allocated",
    }


def peak_rss():
    """This process's peak resident memory in bytes.

    Not getrusage's ru_maxrss: Linux carries that over from the parent through fork and
    exec, so a child of the process that built the big model would report its size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # no /proc: KiB


def machine(threads):
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()}-core {platform.machine()} CPU, {gpu}, torch {torch.__version__}, "
        f"{threads or torch.get_num_threads()} torch threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # a child process's one case
    args = parser.parse_args()

    if args.case:
        model, device, resolution, steps = args.case.split(",")
        figures = run_case(model, device, int(resolution), int(steps), args.threads)
        print("RESULT " + json.dumps(figures))
        return

    import torch

    cases = CPU_CASES + (GPU_CASES if torch.cuda.is_available() else [])
    for model in sorted({case[0] for case in cases}):
        model_dir(model)  # here, so that building it does not count in a case's memory
    rows = []
    for model, device, resolution, steps, quick_steps in cases:
        steps = quick_steps if args.quick else steps
        command = [sys.executable, __file__, "--case", f"{model},{device},{resolution},{steps}"]
        if args.threads:
            command += ["--threads", str(args.threads)]
        print(f"running {model} on {device} at {resolution} px, {steps} steps ...",
              file=sys.stderr, flush=True)
        output = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)  # noqa: S603 (this interpreter on our trainer, fixed arguments)
        lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
        if output.returncode or not lines:
            print(output.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the case {model}/{device}/{resolution} failed")
        rows.append(json.loads(lines[-1].removeprefix("RESULT ")))

    print("\n### LoRA training speed\n")
    print(f"Machine: {machine(args.threads)}. "
          f"Rank {RANK}, batch size {BATCH_SIZE}: one image a step.\n")
    headers = list(rows[0])
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        cells = [f"{value:.3f}" if isinstance(value, float) else str(value)
                 for value in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
