"""Shared pieces of the benchmark scripts: import path, model folders, timing, tables.

Run a benchmark from the repository root with the project's Python, e.g.
`.venv/bin/python bench/engine_cold_warm.py --quick`. Models are built once under
var/bench/ and reused by later runs.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VAR = ROOT / "var" / "bench"


def arguments(description):
    """Parse --quick (fewer repeats) and --threads (torch CPU threads; default torch's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads; 1 is faster on a small machine other processes load",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


def built(name, build):
    """The folder var/bench/<name>, built by `build(folder)` on first use.

    Built in a staging folder and renamed, so an interrupted build is not reused.
    """
    target = VAR / name
    if not target.exists():
        staging = VAR / f".{name}.building"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        print(f"building {name} under {target} (once) ...", flush=True)
        build(staging)
        staging.rename(target)
    return target


def demo_model():
    """var/bench/demo-shapes: the demo model (the committed trained weights), installed
    again when they changed since."""
    from generation.engine.demo import DEMO_WEIGHTS, SUMS_FILE, install_demo_model

    target = VAR / "demo-shapes"
    sums = target / SUMS_FILE
    if sums.is_file() and sums.read_text() != (DEMO_WEIGHTS / SUMS_FILE).read_text():
        shutil.rmtree(target)
    return built("demo-shapes", install_demo_model)


def sd15_shaped_model():
    from generation.engine.sd15_shaped import build_sd15_shaped_pipeline

    return built("sd15-shaped", build_sd15_shaped_pipeline)


def random_lora(base_dir, seed, scale=1.0):
    """A random LoRA for the base in `base_dir`, cached as var/bench/<base>-lora<seed>
    (make_random_lora's `scale`: the standard deviation of its "up" weights)."""
    from generation.engine.lora import make_random_lora

    def build(folder):
        make_random_lora(base_dir, folder / "lora.safetensors", seed=seed, scale=scale)

    name = f"{Path(base_dir).name}-lora{seed}" + (f"-scale{scale:g}" if scale != 1.0 else "")
    return built(name, build) / "lora.safetensors"


def timed(function, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def median(seconds):
    return statistics.median(seconds)


def summary(seconds):
    """'median (min-max, n=N)' of a list of timings, in seconds."""
    if len(seconds) == 1:
        return f"{seconds[0]:.3f}"
    return f"{median(seconds):.3f} ({min(seconds):.3f}-{max(seconds):.3f}, n={len(seconds)})"


def machine():
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = "no GPU"
    return (
        f"{os.cpu_count()}-core {platform.machine()} CPU, {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}"
    )


def print_table(title, headers, rows):
    """Print a Markdown table (ready to paste into docs/performance.md)."""
    print(f"\n### {title}\n")
    print(f"Machine: {machine()}\n")
    cells = [headers] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    print(line(headers))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in cells[1:]:
        print(line(row))
