"""`make gpu-check`: the GPU path proven and measured by one unattended command.

GPU time comes in short windows, so this is ready beforehand: on a CUDA machine with no
network, in at most 8 minutes, it runs the project's own code (the engine's PipelineCache,
generation.submit and a real qcluster, the trainer), never copies of it, and prints
Markdown tables that it also writes to <out>/gpu-check.md:

1. correctness in fp16 at 512 px on the SD1.5-shaped model (random weights, built on the
   machine): images finite and not constant; the same seed gives the same pixels; a batch
   of 4 equals the 4 singles; a LoRA switch changes the image and turning LoRAs off gives
   the plain image back; the VAE decode in fp16 has no NaN;
2. speed: raw diffusers against PipelineCache.generate; compiled mode (IMAGINEER_COMPILE)
   against eager, with its warm-up; images/s at batch 1, 4 and 8; peak VRAM of each;
3. the worker path: jobs through generation.submit and a qcluster (SQLite, ORM broker)
   against the same direct pipeline calls;
4. training: LoRA steps/s at 512 px (bf16 autocast, rank 16, batch 1 and 4), peak VRAM,
   and a checkpoint written and resumed;
5. SDXL: an SDXL-shaped model (SDXL base 1.0's shipped configs, random weights, built on
   the GPU in fp16) through the engine at 1024 px: load time, s/image, peak VRAM, and
   the image finite (the VAE's fp16 overflow: force_upcast, device.upcast_on_overflow).

Each part runs in a child process of its own (`--part`), with a time limit taken from
what is left of the 8 minutes, so a crash, a hang or an exhausted GPU in one part leaves
the others their figures; the child's log goes to <out>/gpu-check.log.

So that it cannot rot, `--cpu-smoke` runs the same parts on the demo model at 64 px on the
CPU in about a minute (imagineer/tests/test_gpu_check.py runs it). Without a GPU, and
without --cpu-smoke, it refuses to report GPU figures, in one line.

Packages: a CUDA box has torch, transformers, peft, accelerate, safetensors and numpy.
The rest (diffusers, Django and the apps it imports) come from the wheels that
`make gpu-wheels` downloads into .gpu-wheels/ (bench/gpu_wheels.py); when any is missing,
this installs them with pip, no index, into .gpu-site/ and puts that first on the path.

    python3 bench/gpu_check.py [--out DIR] [--cpu-smoke] [--parts engine,worker,...]
                               [--wheels DIR] [--site DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WHEEL_LIST = BENCH / "gpu-wheels.txt"
NO_GPU_EXIT = 3  # the exit status of the refusal, for the Makefile's fallback

PROMPTS = ["a lighthouse at dusk", "a red fox in the snow", "a bowl of fruit", "a city street",
           "a mountain lake", "an old sailing ship", "a field of sunflowers", "a robot"]
GUIDANCE = 7.5
# A batch of 4 against the 4 singles: the mean absolute difference of their pixels
# (0-255) may be this much. fp16 GEMMs tile a batch differently from a single image.
BATCH_MEAN_TOLERANCE = 1.0
# A LoRA changes an image when the mean absolute pixel difference is above this.
LORA_CHANGES_ABOVE = 1.0


@dataclass(frozen=True)
class Profile:
    """What one run measures, and how long each part may take (seconds)."""

    name: str
    device: str  # "cuda" or "cpu"
    model: str  # "sd15-shaped" or "demo" (built by bench/benchlib.py)
    size: int  # image side, px
    steps: int  # for speed and the worker
    check_steps: int  # for the correctness checks
    repeats: int  # timed calls per speed figure (after a warm-up call)
    batches: tuple
    compile_modes: tuple  # torch.compile modes to measure (device.COMPILE_MODES)
    compile_backend: str
    worker_jobs: int
    train_resolution: int
    train_steps: int  # batch 1: a checkpoint at half, cancelled at three quarters, resumed
    train_steps_batch4: int
    threads: int | None  # torch CPU threads (None: torch's default)
    sdxl_size: int  # the SDXL part's image side, px (the tiny SDXL on the CPU)
    sdxl_steps: int
    budget: float  # seconds for the whole run, model building included
    part_limits: tuple  # ((part, seconds), ...) in the order they run


GPU = Profile(
    name="gpu", device="cuda", model="sd15-shaped", size=512, steps=30, check_steps=20,
    repeats=3, batches=(1, 4, 8), compile_modes=("default", "reduce-overhead"),
    compile_backend="inductor", worker_jobs=20, train_resolution=512,
    train_steps=20, train_steps_batch4=10, threads=None, sdxl_size=1024, sdxl_steps=20,
    budget=470,
    part_limits=(("engine", 180), ("worker", 180), ("training", 150),
                 ("compiled:default", 240), ("compiled:reduce-overhead", 180),
                 ("sdxl", 150)),
)
CPU_SMOKE = Profile(
    name="cpu-smoke", device="cpu", model="demo", size=64, steps=4, check_steps=4,
    repeats=1, batches=(1, 4, 8), compile_modes=("default",), compile_backend="eager",
    worker_jobs=3, train_resolution=64, train_steps=4,
    train_steps_batch4=3, threads=1, sdxl_size=64, sdxl_steps=3,
    budget=900,  # a shared CPU may be slow: no hurry
    part_limits=(("engine", 300), ("worker", 300), ("training", 300),
                 ("compiled:default", 300), ("sdxl", 300)),
)
PROFILES = {profile.name: profile for profile in (GPU, CPU_SMOKE)}
NOT_ASKED = "not asked for (--parts)"
# A part is not started with less than this many seconds of the budget left.
MIN_PART_SECONDS = 30
# The random LoRAs' "up" weights' standard deviation, by model: about the size of the
# SD1.5-shaped UNet's own weights, so a LoRA changes the picture without overflowing fp16.
LORA_SCALES = {"sd15-shaped": 0.05, "demo": 1.0}


# --- Packages: what the box lacks comes from the wheels folder --------------------------


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_list():
    """The distributions the check needs beyond the box's own (bench/gpu-wheels.txt)."""
    names = []
    for line in WHEEL_LIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def wheels_in(folder):
    """{normalized name: (version, path)} of the wheel files in `folder`."""
    found = {}
    for path in sorted(Path(folder).glob("*.whl")):
        name, version = path.name.split("-")[:2]
        found[normalize(name)] = (version, path)
    return found


def installed_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def use_site(site):
    """Put `site` first on this process's path and on its children's (PYTHONPATH)."""
    import importlib

    site = str(Path(site).resolve())
    if site not in sys.path:
        sys.path.insert(0, site)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if site not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([site, *paths])
    importlib.invalidate_caches()


def ensure_packages(wheels, site):
    """Make every distribution of bench/gpu-wheels.txt importable, at the version of its
    wheel when the wheels folder has one: install what is missing or different from the
    folder into `site` (pip, no index, no dependencies), then put `site` on the path.
    Returns a line saying what it did; raises SystemExit with one line when it cannot."""
    wheels, site = Path(wheels), Path(site)
    available = wheels_in(wheels) if wheels.is_dir() else {}
    stamp = site / ".installed"
    if stamp.is_file():
        use_site(site)

    def lacking():
        return [name for name in wheel_list()
                if installed_version(name) is None
                or (normalize(name) in available
                    and installed_version(name) != available[normalize(name)][0])]

    missing = lacking()
    if not missing:
        return "packages: all present"
    names = {normalize(name) for name in wheel_list()}
    absent = sorted(names - set(available))
    if absent:
        raise SystemExit(
            f"gpu_check: missing packages {', '.join(missing)} and no wheels for "
            f"{', '.join(absent)} in {wheels}: run `make gpu-wheels` where there is network "
            "and bring that folder along"
        )
    staging = site.with_name(site.name + ".installing")
    shutil.rmtree(staging, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
               "--no-compile", "--disable-pip-version-check", "--target", str(staging),
               *[str(available[name][1]) for name in sorted(names)]]
    result = subprocess.run(command, capture_output=True, text=True)  # noqa: S603 (pip of this interpreter, an argument list)
    if result.returncode:
        raise SystemExit(f"gpu_check: pip could not install the wheels of {wheels}: "
                         + (result.stderr.strip().splitlines() or ["(no message)"])[-1])
    (staging / ".installed").write_text("\n".join(sorted(p.name for _, p in available.values())))
    shutil.rmtree(site, ignore_errors=True)
    staging.rename(site)
    use_site(site)
    still = lacking()
    if still:
        raise SystemExit(f"gpu_check: still missing after installing: {', '.join(still)}")
    return f"packages: installed {', '.join(missing)} from {wheels} into {site}"


# --- Measuring -------------------------------------------------------------------------


def device_of(profile):
    from generation.engine.device import pick_device

    return pick_device(profile.device)


def reset_peak(profile):
    if profile.device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(profile):
    """Peak GPU memory allocated since reset_peak (models resident included); None on a CPU."""
    if profile.device != "cuda":
        return None
    import torch

    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_time(function, repeats):
    return statistics.median(timed(function) for _ in range(repeats))


def generate(cache, model, prompts, seeds, profile, steps=None, loras=()):
    """One PipelineCache.generate call: the engine's public entry point, as the worker
    makes it (generation/tasks.py); one GenerationParams per prompt."""
    from generation.engine.params import GenerationParams

    params = [GenerationParams(prompt, seed=seed, width=profile.size, height=profile.size,
                               steps=steps or profile.steps, guidance_scale=GUIDANCE)
              for prompt, seed in zip(prompts, seeds, strict=True)]
    return cache.generate(str(model), params, loras=list(loras))


def pixels(image):
    import numpy as np

    return np.asarray(image, dtype=np.int16)


def difference(a, b):
    """(max, mean) absolute difference of two images' pixels, 0-255."""
    import numpy as np

    delta = np.abs(pixels(a) - pixels(b))
    return int(delta.max()), float(delta.mean())


class FiniteWatch:
    """Forward hooks on the UNet and the VAE decoder that count outputs with NaN or inf."""

    def __init__(self, pipeline):
        self.passes = {"UNet": 0, "VAE decoder": 0}
        self.bad = {"UNet": 0, "VAE decoder": 0}
        self.handles = [pipeline.unet.register_forward_hook(self.hook("UNet")),
                        pipeline.vae.decoder.register_forward_hook(self.hook("VAE decoder"))]

    def hook(self, name):
        import torch

        def check(module, inputs, output):
            tensor = output[0] if isinstance(output, tuple) else getattr(output, "sample", output)
            self.passes[name] += 1
            if not bool(torch.isfinite(tensor).all()):
                self.bad[name] += 1

        return check

    def remove(self):
        for handle in self.handles:
            handle.remove()


def check_row(name, ok, detail):
    return {"check": name, "ok": bool(ok), "detail": detail}


def correctness(cache, model, loras, profile):
    """The correctness rows: [{"check", "ok", "detail"}]."""
    import torch

    pipeline = cache.pipeline(str(model))
    watch = FiniteWatch(pipeline)
    steps, rows = profile.check_steps, []
    prompts, seeds = PROMPTS[:4], [11, 22, 33, 44]

    def one(index, lora=()):
        return generate(cache, model, [prompts[index]], [seeds[index]], profile, steps, lora)[0]

    try:
        singles = [one(index) for index in range(4)]
        spreads = [float(pixels(image).std()) for image in singles]
        bad = {name: count for name, count in watch.bad.items() if count}
        rows.append(check_row(
            "every image finite and not constant", not bad and min(spreads) > 1.0,
            f"{sum(watch.passes.values())} UNet and VAE outputs checked, "
            + (f"non-finite: {bad}" if bad else "all finite")
            + f"; pixel standard deviation {min(spreads):.1f}-{max(spreads):.1f}"))

        top, _ = difference(singles[0], one(0))
        rows.append(check_row("the same seed twice: identical pixels", top == 0,
                              f"max difference {top}"))

        batch = generate(cache, model, prompts, seeds, profile, steps)
        differences = [difference(b, s) for b, s in zip(batch, singles, strict=True)]
        worst = max(mean for _, mean in differences)
        rows.append(check_row(
            "a batch of 4 equals the 4 singles", worst <= BATCH_MEAN_TOLERANCE,
            f"mean difference {worst:.2f} at most (tolerance {BATCH_MEAN_TOLERANCE}), "
            f"max {max(top for top, _ in differences)}"))

        with_a = one(0, [("a", loras[0], 1.0)])
        with_b = one(0, [("b", loras[1], 1.0)])  # set_adapters switches A -> B
        plain_off = one(0)
        changed = difference(singles[0], with_a)[1], difference(with_a, with_b)[1]
        rows.append(check_row(
            "a LoRA switch (set_adapters) changes the image",
            min(changed) > LORA_CHANGES_ABOVE,
            f"mean difference plain -> LoRA A {changed[0]:.1f}, A -> B {changed[1]:.1f}"))
        top, _ = difference(singles[0], plain_off)
        rows.append(check_row("LoRAs off: the plain image back", top == 0,
                              f"max difference {top}"))
    finally:
        watch.remove()

    # The VAE alone, in the pipeline's dtype, on random latents of the size's shape.
    latent = profile.size // pipeline.vae_scale_factor
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((1, pipeline.vae.config.latent_channels, latent, latent),
                          generator=generator)
    latents = latents.to(pipeline.device, pipeline.vae.dtype)
    with torch.no_grad():
        decoded = pipeline.vae.decode(latents / pipeline.vae.config.scaling_factor).sample
    finite = bool(torch.isfinite(decoded).all()) and not watch.bad["VAE decoder"]
    rows.append(check_row(
        f"VAE decode in {str(pipeline.vae.dtype).removeprefix('torch.')}: no NaN", finite,
        f"random latents at {profile.size} px and {watch.passes['VAE decoder']} decodes of "
        "the calls above: " + ("all finite" if finite else
                               "NaN/inf: the engine must decode with an fp32 VAE")))
    return rows


def measure_raw(profile, model, device):
    """Raw diffusers: the pipeline as its docs load and call it, nothing of ours."""
    import torch
    from diffusers import StableDiffusionPipeline

    raw = StableDiffusionPipeline.from_pretrained(
        str(model), dtype=device.dtype, safety_checker=None, requires_safety_checker=False
    ).to(device.type)
    raw.set_progress_bar_config(disable=True)

    def call():
        raw(PROMPTS[0], width=profile.size, height=profile.size,
            num_inference_steps=profile.steps, guidance_scale=GUIDANCE,
            generator=torch.Generator(device.type).manual_seed(1))

    call()
    reset_peak(profile)
    seconds = median_time(call, profile.repeats)
    return {"path": "raw diffusers StableDiffusionPipeline", "seconds": seconds,
            "peak_gib": peak_gib(profile)}


def part_engine(profile, model, loras):
    """Correctness, raw diffusers against the engine, and batch sizes (eager)."""
    from generation.engine.device import free_memory
    from generation.engine.pipelines import PipelineCache

    device = device_of(profile)
    cache = PipelineCache(device=device)
    results = {"device": str(device.dtype).removeprefix("torch.")}
    results["correctness"] = correctness(cache, model, loras, profile)
    cache.release()

    speed = [measure_raw(profile, model, device)]
    free_memory(device)

    def engine_call(batch=1):
        generate(cache, model, PROMPTS[:batch], list(range(1, batch + 1)), profile)

    engine_call()
    reset_peak(profile)
    speed.append({"path": "engine PipelineCache.generate",
                  "seconds": median_time(engine_call, profile.repeats),
                  "peak_gib": peak_gib(profile)})
    results["speed"] = speed

    batches = [{"batch": 1, "seconds": speed[1]["seconds"], "peak_gib": speed[1]["peak_gib"]}]
    for batch in profile.batches[1:]:
        engine_call(batch)  # warm-up of this shape
        reset_peak(profile)
        seconds = timed(lambda batch=batch: engine_call(batch))
        batches.append({"batch": batch, "seconds": seconds, "peak_gib": peak_gib(profile)})
    results["batches"] = batches
    cache.release()
    return results


def part_compiled(profile, model, mode):
    """Compiled mode as the worker runs it (PipelineCache(compile=mode)), at batch 1."""
    from generation.engine.pipelines import PipelineCache

    cache = PipelineCache(device=device_of(profile), compile=mode,
                          compile_backend=profile.compile_backend)
    cache.pipeline(str(model))  # load (not counted in the warm-up)

    def call():
        generate(cache, model, PROMPTS[:1], [1], profile)

    # The first call compiles; with CUDA graphs the second records them.
    first, second = timed(call), timed(call)
    reset_peak(profile)
    seconds = median_time(call, profile.repeats)
    result = {"mode": mode, "backend": profile.compile_backend, "first_call": first,
              "warmup": first + second - 2 * seconds, "seconds": seconds,
              "peak_gib": peak_gib(profile)}
    cache.release()
    return result


def part_worker(profile, model):
    """The same jobs through generation.submit and a real qcluster, and directly."""
    from worker_throughput import compare

    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-worker-"))
    try:
        return compare(model, jobs=profile.worker_jobs, size=profile.size, steps=profile.steps,
                       guidance=GUIDANCE, threads=profile.threads, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def part_training(profile, model):
    """LoRA steps/s at batch 1 and 4, peak memory, and a checkpoint written and resumed."""
    from training_speed import training_images

    from generation.engine.device import free_memory
    from training.trainer import TrainingCancelled, TrainingConfig, train_lora

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-training-"))
    examples = training_images(folder, count=4)
    results = {"cases": []}

    def config(batch_size, steps, checkpoint_every=0):
        return TrainingConfig(rank=16, alpha=16, learning_rate=1e-4, steps=steps,
                              batch_size=batch_size, resolution=profile.train_resolution,
                              seed=0, trigger_word="stripes",
                              checkpoint_every=checkpoint_every)

    def train(name, settings, checkpoint_dir=None, cancel_after=None):
        times = {}

        def on_progress(step, total):
            times[step] = time.perf_counter()

        def should_cancel():
            return cancel_after is not None and max(times, default=0) >= cancel_after

        free_memory(device_of(profile))
        reset_peak(profile)
        try:
            result = train_lora(model, examples, folder / name, settings, device=profile.device,
                                on_progress=on_progress, should_cancel=should_cancel,
                                checkpoint_dir=checkpoint_dir)
        except TrainingCancelled:
            result = None
        # The steps after the first one this call ran (that one warms up).
        done = sorted(step for step in times if step > min(times))
        seconds = times[done[-1]] - times[done[0]]
        results["cases"].append({
            "case": name, "batch": settings.batch_size, "steps": len(done) - 1,
            "seconds": seconds, "peak_gib": peak_gib(profile)})
        return result

    half, three_quarters = profile.train_steps // 2, profile.train_steps * 3 // 4
    checkpoints = folder / "checkpoints"
    train("batch 1", config(1, profile.train_steps, half), checkpoints, three_quarters)
    written = sorted(path.name for path in checkpoints.iterdir() if path.is_dir())
    resumed = train("batch 1, resumed", config(1, profile.train_steps, half), checkpoints)
    losses = [loss for _, loss in resumed.losses] if resumed else []
    ok = (written == [f"checkpoint-{half:06d}"] and resumed is not None
          and resumed.resumed_from_step == half and resumed.steps_done == profile.train_steps
          and resumed.lora_path.is_file() and all(loss == loss for loss in losses))
    results["resume"] = {
        "ok": ok,
        "detail": f"cancelled after step {three_quarters} with {written or 'no checkpoint'}; "
                  + (f"resumed from step {resumed.resumed_from_step}, "
                     f"{resumed.steps_done} steps done, LoRA written, "
                     f"last loss {losses[-1]:.4f}" if resumed else "did not resume")}
    train("batch 4", config(4, profile.train_steps_batch4))
    shutil.rmtree(folder, ignore_errors=True)
    return results


def part_sdxl(profile):
    """SDXL through the engine: an SDXL-shaped model (random weights) built here, loaded by
    PipelineCache and drawn from at profile.sdxl_size; the tiny SDXL on the CPU."""
    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache
    from generation.engine.tiny_sdxl import build_sdxl_shaped_pipeline, build_tiny_sdxl_pipeline

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-sdxl-"))
    try:
        started = time.perf_counter()
        if profile.device == "cuda":
            build_sdxl_shaped_pipeline(folder, device=profile.device)
            model = "sdxl-shaped (SDXL base 1.0 configs, random weights)"
        else:
            build_tiny_sdxl_pipeline(folder)
            model = "tiny SDXL (random weights)"
        built = time.perf_counter() - started
        cache = PipelineCache(device=device_of(profile))
        load = timed(lambda: cache.pipeline(str(folder)))
        pipeline = cache.pipeline(str(folder))
        watch = FiniteWatch(pipeline)
        params = GenerationParams(PROMPTS[0], seed=1, width=profile.sdxl_size,
                                  height=profile.sdxl_size, steps=profile.sdxl_steps,
                                  guidance_scale=GUIDANCE)
        try:
            first = cache.generate(str(folder), params)[0]
            reset_peak(profile)
            seconds = median_time(lambda: cache.generate(str(folder), params), profile.repeats)
        finally:
            watch.remove()
        bad = {name: count for name, count in watch.bad.items() if count}
        spread = float(pixels(first).std())
        return {"model": model, "pipeline": type(pipeline).__name__, "build": built,
                "load": load, "seconds": seconds, "peak_gib": peak_gib(profile),
                "finite": not bad and spread > 1.0,
                "detail": (f"non-finite: {bad}" if bad else "all finite")
                + f"; pixel standard deviation {spread:.1f}; VAE "
                f"{str(pipeline.vae.dtype).removeprefix('torch.')}, force_upcast "
                f"{bool(pipeline.vae.config.get('force_upcast'))}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_part(name, profile, model, loras):
    """The body of a child process: one part's figures, as a dict."""
    if profile.threads:
        import torch

        torch.set_num_threads(profile.threads)
    if name == "engine":
        return part_engine(profile, model, loras)
    if name.startswith("compiled:"):
        return part_compiled(profile, model, name.split(":", 1)[1])
    if name == "worker":
        return part_worker(profile, model)
    if name == "training":
        return part_training(profile, model)
    if name == "sdxl":
        return part_sdxl(profile)
    raise ValueError(f"--part: no part {name!r}")


def child(args):
    """Run one part and print its figures as one `RESULT {json}` line."""
    for path in (ROOT, BENCH):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    # The parent stops a part that overruns with SIGTERM: end it as an exception, so the
    # part's `finally` blocks run (the worker part kills its qcluster there).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = PROFILES[args.profile]
    figures = run_part(args.part, profile, Path(args.model_dir), [Path(p) for p in args.loras])
    print("RESULT " + json.dumps(figures), flush=True)


# --- The parent: build the models, run the parts, write the tables ----------------------


def spawn_part(name, profile, model, loras, timeout, log):
    """Run a part in a child process; (figures or None, error line or None)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name,
               "--profile", profile.name, "--model-dir", str(model),
               "--loras", *[str(path) for path in loras]]
    log.write(f"\n===== part {name} (limit {timeout:.0f} s)\n")
    log.flush()
    offset = log.tell()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log,  # noqa: S603 (this script)
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        return None, f"stopped after its time limit of {timeout:.0f} s"
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if process.returncode or not lines:
        return None, f"failed (exit status {process.returncode}): {last_error(log, offset)}"
    return json.loads(lines[-1].removeprefix("RESULT ")), None


def last_error(log, offset):
    """The last line a part logged (from `offset`) that names an exception, else its last."""
    with open(log.name) as handle:
        handle.seek(offset)
        lines = [line.strip() for line in handle.read().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b", line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def machine_lines(profile):
    import platform

    import torch

    lines = [f"Python {platform.python_version()}, torch {torch.__version__}, "
             f"diffusers {installed_version('diffusers')}, "
             f"transformers {installed_version('transformers')}, "
             f"peft {installed_version('peft')}, {os.cpu_count()} CPU cores"]
    if profile.device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        driver = "unknown"
        try:
            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],  # noqa: S607 (the driver's tool from PATH)
                capture_output=True, text=True, timeout=20).stdout.strip() or driver
        except (OSError, subprocess.SubprocessError):
            pass
        lines.insert(0, f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
                        f"driver {driver}, CUDA {torch.version.cuda}, "
                        f"cuDNN {torch.backends.cudnn.version()}")
    else:
        lines.insert(0, "CPU smoke check: no GPU figures (the demo model, 64 px, on the CPU)")
    return lines


def table(headers, rows):
    cells = [headers] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *[line(row) for row in cells[1:]]]


def gib(value):
    return "n/a (CPU)" if value is None else f"{value:.2f}"


def met(ok):
    return "met" if ok else "NOT met"


def report(profile, results, errors, seconds, notes):
    """The Markdown report: the four sections' tables, then the goals."""
    size, steps = profile.size, profile.steps
    lines = [f"## GPU check ({profile.name}), {time.strftime('%Y-%m-%d %H:%M')}", "",
             *[f"- {line}" for line in machine_lines(profile) + notes],
             f"- total {seconds:.0f} s", ""]
    goals = []

    def failed(part):
        return [f"**{part} part: {errors[part]}**", ""] if part in errors else []

    engine = results.get("engine", {})
    lines += [f"### 1. Correctness ({profile.model}, {engine.get('device', '?')}, "
              f"{size}x{size}, {profile.check_steps} steps)", "", *failed("engine")]
    if engine:
        lines += table(["check", "result", "detail"],
                       [[row["check"], "ok" if row["ok"] else "FAILED", row["detail"]]
                        for row in engine["correctness"]])
        goals.append(["every correctness check passes",
                      f"{sum(r['ok'] for r in engine['correctness'])} of "
                      f"{len(engine['correctness'])}",
                      met(all(r["ok"] for r in engine["correctness"]))])
    lines += ["", f"### 2. Speed ({size}x{size}, {steps} steps, guidance {GUIDANCE}; "
              "it/s = steps / seconds of the whole call; peak VRAM counts the model)", ""]
    if engine:
        raw, ours = engine["speed"]
        lines += table(["path", "it/s", "s/image", "peak VRAM (GiB)", "of raw"],
                       [[row["path"], f"{steps / row['seconds']:.2f}", f"{row['seconds']:.3f}",
                         gib(row["peak_gib"]), f"{raw['seconds'] / row['seconds']:.2f}"]
                        for row in (raw, ours)])
        ratio = raw["seconds"] / ours["seconds"]
        goals.append(["engine it/s >= 0.95 of raw diffusers", f"{ratio:.2f}", met(ratio >= 0.95)])
        lines += [""]
    rows, best = [], None
    for mode in profile.compile_modes:
        part = f"compiled:{mode}"
        figures = results.get(part)
        if figures is None:
            rows.append([mode, "-", "-", "-", "-", "-", errors.get(part, "not run")])
            continue
        ratio = engine["speed"][1]["seconds"] / figures["seconds"] if engine else None
        best = max(best or 0, ratio or 0)
        rows.append([f"{mode} ({figures['backend']})", f"{figures['warmup']:.1f}",
                     f"{figures['first_call']:.1f}", f"{steps / figures['seconds']:.2f}",
                     f"{ratio:.2f}x" if ratio else "-", gib(figures["peak_gib"]), "ok"])
    if engine:
        eager = engine["speed"][1]
        rows.insert(0, ["eager (the engine above)", "-", "-", f"{steps / eager['seconds']:.2f}",
                        "1.00x", gib(eager["peak_gib"]), "ok"])
    lines += ["IMAGINEER_COMPILE (torch.compile of the UNet, channels_last), batch 1:", ""]
    lines += table(["mode", "warm-up (s)", "first call (s)", "it/s", "of eager",
                    "peak VRAM (GiB)", "result"], rows)
    goals.append(["compiled >= 1.4x eager (best mode)", f"{best:.2f}x" if best else "-",
                  met(bool(best) and best >= 1.4)])
    lines += ["", "Batch sizes (the engine, eager; one call of N prompts):", ""]
    if engine:
        lines += table(["batch", "s/call", "images/s", "peak VRAM (GiB)"],
                       [[row["batch"], f"{row['seconds']:.3f}",
                         f"{row['batch'] / row['seconds']:.2f}", gib(row["peak_gib"])]
                        for row in engine["batches"]])
    else:
        lines += ["(not measured: the engine part failed)"]

    from worker_throughput import HEADERS
    from worker_throughput import rows as worker_rows

    worker = results.get("worker")
    lines += ["", f"### 3. Worker path ({profile.worker_jobs} jobs at {size} px, {steps} "
              "steps: generation.submit, SQLite, ORM broker, a real qcluster)", "",
              *failed("worker")]
    if worker:
        lines += table(HEADERS, worker_rows(worker))
        ratio = worker["direct_seconds"] / worker["worker_seconds"]
        goals.append(["worker jobs/s >= 0.95 of direct", f"{ratio:.2f}",
                      met(ratio >= 0.95 and not worker["failed"])])
        if worker["failed"]:
            lines += ["", f"**{worker['failed']} jobs failed.**"]

    training = results.get("training")
    lines += ["", f"### 4. Training (LoRA rank 16, {profile.train_resolution} px, "
              f"{'bf16 autocast' if profile.device == 'cuda' else 'fp32'}, {profile.model})",
              "", *failed("training")]
    if training:
        lines += table(["case", "steps timed", "steps/s", "s/step", "peak VRAM (GiB)"],
                       [[row["case"], row["steps"],
                         f"{row['steps'] / row['seconds']:.2f}" if row["seconds"] else "-",
                         f"{row['seconds'] / row['steps']:.3f}" if row["steps"] else "-",
                         gib(row["peak_gib"])] for row in training["cases"]])
        resume = training["resume"]
        lines += ["", f"Checkpoint written and resumed: **{'ok' if resume['ok'] else 'FAILED'}**"
                  f" ({resume['detail']})."]
        goals.append(["a checkpoint written and resumed", "ok" if resume["ok"] else "FAILED",
                      met(resume["ok"])])
    sdxl = results.get("sdxl")
    lines += ["", f"### 5. SDXL ({profile.sdxl_size}x{profile.sdxl_size}, "
              f"{profile.sdxl_steps} steps, the engine's PipelineCache)", "", *failed("sdxl")]
    if sdxl:
        lines += table(["model", "pipeline", "build (s)", "load (s)", "s/image", "it/s",
                        "peak VRAM (GiB)", "image"],
                       [[sdxl["model"], sdxl["pipeline"], f"{sdxl['build']:.1f}",
                         f"{sdxl['load']:.1f}", f"{sdxl['seconds']:.2f}",
                         f"{profile.sdxl_steps / sdxl['seconds']:.2f}", gib(sdxl["peak_gib"]),
                         ("ok: " if sdxl["finite"] else "FAILED: ") + sdxl["detail"]]])
        goals.append([f"an SDXL image at {profile.sdxl_size} px, finite",
                      "ok" if sdxl["finite"] else "FAILED", met(sdxl["finite"])])
    lines += ["", "### Goals", ""]
    if profile.device != "cuda":
        lines += ["(CPU smoke check: these say the code path runs, not how fast a GPU is.)", ""]
    lines += table(["goal", "figure", "result"], goals)
    return "\n".join(lines) + "\n"


def build_models(profile):
    """The base model folder and two random LoRAs for it (var/bench/, built once)."""
    import benchlib

    model = benchlib.sd15_shaped_model() if profile.model == "sd15-shaped" \
        else benchlib.demo_model()
    loras = [benchlib.random_lora(model, seed, scale=LORA_SCALES[profile.model])
             for seed in (1, 2)]
    return model, loras


def parent(args):
    started = time.monotonic()
    for path in (ROOT, BENCH):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    note = ensure_packages(args.wheels, args.site)
    import torch

    if args.cpu_smoke:
        profile = CPU_SMOKE
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the children and the qcluster too
    elif torch.cuda.is_available():
        profile = GPU
    else:
        print(f"gpu_check: no CUDA GPU is visible to torch {torch.__version__}: no GPU "
              "figures reported (on a CPU, --cpu-smoke checks the code path)", file=sys.stderr)
        return NO_GPU_EXIT
    if args.model:
        profile = replace(profile, model=args.model)
    unknown = set(args.parts or []) - {name for name, _ in profile.part_limits}
    if unknown:
        raise SystemExit(f"gpu_check: --parts: no part {', '.join(sorted(unknown))}; the parts "
                         f"are {', '.join(name for name, _ in profile.part_limits)}")
    if profile.threads:
        os.environ["OMP_NUM_THREADS"] = str(profile.threads)
        torch.set_num_threads(profile.threads)
    # Nothing may be fetched: the box has no network, and the models are local folders.
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "PYTHONUNBUFFERED": "1"})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"gpu_check: {profile.name} run, {note}; log in {out / 'gpu-check.log'}", flush=True)

    model, loras = build_models(profile)
    results, errors = {}, {}
    (out / "gpu-check.log").write_text("")
    with open(out / "gpu-check.log", "a") as log:
        for name, limit in profile.part_limits:
            if args.parts and name not in args.parts:
                errors[name] = NOT_ASKED
                continue
            left = profile.budget - (time.monotonic() - started)
            if left < MIN_PART_SECONDS:
                errors[name] = f"skipped: {left:.0f} s of the {profile.budget:.0f} s were left"
                continue
            print(f"gpu_check: part {name} ...", flush=True)
            part_started = time.monotonic()
            figures, error = spawn_part(name, profile, model, loras, min(limit, left), log)
            print(f"gpu_check: part {name} {'done' if figures else error} "
                  f"in {time.monotonic() - part_started:.0f} s", flush=True)
            if figures is None:
                errors[name] = error
            else:
                results[name] = figures
    text = report(profile, results, errors, time.monotonic() - started, [note])
    (out / "gpu-check.md").write_text(text)
    print("\n" + text)
    print(f"gpu_check: tables written to {out / 'gpu-check.md'}")
    checks = [row["ok"] for row in results.get("engine", {}).get("correctness", [])]
    if "training" in results:
        checks.append(results["training"]["resume"]["ok"])
    if "sdxl" in results:
        checks.append(results["sdxl"]["finite"])
    failed = [name for name, error in errors.items() if error != NOT_ASKED]
    return 0 if not failed and all(checks) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "var" / "gpu-check"),
                        help="folder for gpu-check.md and gpu-check.log")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="run the same parts on the CPU, on the demo model at 64 px")
    parser.add_argument("--wheels", default=str(ROOT / ".gpu-wheels"),
                        help="the folder of wheels made by `make gpu-wheels`")
    parser.add_argument("--site", default=str(ROOT / ".gpu-site"),
                        help="where missing packages are installed from the wheels")
    parser.add_argument("--model", choices=["demo", "sd15-shaped"],
                        help="another model than the profile's (for trying the check)")
    parser.add_argument("--parts", type=lambda text: text.split(","),
                        help="run only these parts, e.g. engine,compiled:reduce-overhead "
                             "(a rerun after a fix); default: all")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # a child process's one part
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--loras", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
