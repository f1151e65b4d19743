"""The per-process pipeline cache: one base model kept loaded, LoRAs hot-swapped as adapters.

A worker process asks `get_cache()` for the cache and calls `generate(...)` per job. The
base pipeline loads on first use and stays loaded; asking for another base releases the
old one first (one base at a time: two SD pipelines rarely fit one GPU). Each LoRA loads
once, as a peft adapter named after the caller's stable key, and later calls switch
between loaded adapters with `set_adapters`, which costs milliseconds instead of a reload.
At most `max_loras` adapters stay loaded; the least recently used one is deleted first.
With `compile` (a torch.compile mode, IMAGINEER_COMPILE), the base's UNet is compiled as
it loads (device.compile_unet).

No Django here: sources are hub ids or local paths, results are PIL images.
"""

import re
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .checkpoints import inspect_checkpoint, load_single_file
from .clip_tokenizer import clean_prompt
from .device import Device, forget_compiled, free_memory, pick_device, prepare_pipeline
from .params import GenerationParams

# A LoRA for one call: (a stable key, e.g. its id; its file; its weight).
LoraChoice = tuple[object, str | Path, float]


class Cancelled(Exception):
    """Raised out of `generate` when `should_cancel()` said yes between two steps."""


class Generated(list):
    """The images of one `generate` call in output order (prompt 0's, then prompt 1's...),
    with what they were drawn with, worked out once, here: `params[i]`, the parameters of
    image i (its own seed, one image), and `sampler`, the A1111 sampler name of the call."""

    def __init__(self, images: Sequence[Any], params: Sequence[GenerationParams],
                 sampler: str) -> None:
        super().__init__(images)
        self.params = list(params)
        self.sampler = sampler

    def parameters_text(self, index: int, **model: Any) -> str:
        """The A1111 `parameters` text of image `index` (model_name, model_sha256, loras)."""
        return self.params[index].parameters_text(sampler=self.sampler, **model)


# Scheduler name (what jobs store) -> (diffusers scheduler class, Automatic1111 sampler
# name written into the PNG metadata).
SCHEDULERS = {
    "pndm": ("PNDMScheduler", "PLMS"),
    "ddim": ("DDIMScheduler", "DDIM"),
    "euler": ("EulerDiscreteScheduler", "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", "DPM++ 2M"),
    "lms": ("LMSDiscreteScheduler", "LMS"),
}


# Other tools' names of the samplers we have (ComfyUI's and Fooocus's k-diffusion names,
# InvokeAI's; A1111's are SCHEDULERS' own), lower case; a Karras variant ("DPM++ 2M
# Karras", "dpmpp_2m_k") maps to the same scheduler (see scheduler_for_sampler).
SAMPLER_ALIASES = {
    "euler_ancestral": "euler_a",
    "k_euler_a": "euler_a",
    "k_euler": "euler",
    "k_lms": "lms",
    "plms": "pndm",
    "dpmpp_2m": "dpmpp_2m",
    "k_dpmpp_2m": "dpmpp_2m",
    "dpm++ 2m": "dpmpp_2m",
}


def scheduler_for_sampler(sampler: str) -> tuple[str | None, bool]:
    """Our scheduler for a sampler as another tool names it ("Euler a", "euler_ancestral",
    "DPM++ 2M Karras", "dpmpp_2m_k"), and whether the tool used Karras sigmas, which ours
    do not: (None, ...) when we have no such sampler (e.g. "dpmpp_2m_sde_gpu")."""
    name = sampler.strip().lower()
    karras = name.endswith((" karras", "_karras", "_k")) and name not in SAMPLER_ALIASES
    if karras:
        name = name.rsplit(" ", 1)[0] if name.endswith(" karras") else name.rsplit("_", 1)[0]
    if name in SCHEDULERS:
        return name, karras
    for key, (_, a1111_name) in SCHEDULERS.items():
        if name == a1111_name.lower():
            return key, karras
    return SAMPLER_ALIASES.get(name), karras


def scheduler_class(name: str) -> Any:
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"scheduler: {name!r} is not one of {', '.join(SCHEDULERS)}")
    return getattr(diffusers, SCHEDULERS[name][0])


def sampler_name(scheduler: str | None, pipeline_scheduler_class: str | None = None) -> str:
    """The A1111 sampler name for a scheduler name, or for the model's own scheduler class
    (its class name when A1111 has no name for it) when `scheduler` is None."""
    if scheduler is not None:
        return SCHEDULERS[scheduler][1]
    for class_name, a1111_name in SCHEDULERS.values():
        if class_name == pipeline_scheduler_class:
            return a1111_name
    return pipeline_scheduler_class or "Default"


def image_seeds(seeds: Sequence[int], num_images: int) -> list[int]:
    """The seed of each output image of prompts with `seeds` (GenerationParams.image_seeds)."""
    return [seed for s in seeds
            for seed in GenerationParams("", seed=s, num_images=num_images).image_seeds()]


def adapter_name(key: object) -> str:
    """The peft adapter name for a LoRA's stable key (e.g. its database id): "lora_<key>".

    Adapter names become attribute keys in torch ModuleDicts, so anything but letters,
    digits and "_" is replaced.
    """
    return "lora_" + re.sub(r"\W", "_", str(key))


def load_pipeline(source: str | Path, device: Device, compile: str | None = None,
                  compile_backend: str = "inductor") -> Any:
    """Load a pipeline from a hub id, a diffusers folder or a single-file checkpoint;
    `compile`: a torch.compile mode for its UNet, None for eager (see prepare_pipeline)."""
    from diffusers import StableDiffusionPipeline

    options = {
        "dtype": device.dtype,
        # The NSFW checker is a second 1.2 GB model; A1111 and most team setups run
        # without it, and a diffusers folder built locally has none.
        "safety_checker": None,
        "requires_safety_checker": False,
    }
    path = Path(str(source))
    if path.is_file():
        # A single-file checkpoint (A1111's layout): its family read from its keys, its
        # configs and tokenizers the project's own, nothing from the hub (checkpoints.py).
        pipeline = load_single_file(path, inspect_checkpoint(path), {"dtype": device.dtype})
    else:
        pipeline = StableDiffusionPipeline.from_pretrained(str(source), **options)
    return prepare_pipeline(pipeline, device, compile, compile_backend)


class PipelineCache:
    """One loaded base pipeline and its LoRA adapters, for one process.

    Thread-safe: calls are serialised by a lock, so an idle-release timer thread and the
    job thread never both touch the pipeline.
    """

    def __init__(self, max_loras: int = 8, device: Device | None = None,
                 clock: Callable[[], float] = time.monotonic, compile: str | None = None,
                 compile_backend: str = "inductor") -> None:
        self.max_loras = max_loras
        self.device = device or pick_device()
        # A torch.compile mode (device.COMPILE_MODES) for the UNet of the next base
        # loaded, None for eager; the backend is torch.compile's.
        self.compile = compile
        self.compile_backend = compile_backend
        self.clock = clock
        self.base_source: str | None = None
        self.load_count = 0  # base pipeline loads since the cache was made
        self.last_used: float | None = None  # clock() at the end of the last use, or None
        self._pipeline: Any = None
        self._compiled = False  # whether the loaded pipeline's UNet is compiled
        self._scheduler: Any = None  # the model's own scheduler, kept to build others from
        # adapter name -> LoRA file path, least recent first
        self._loras: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.RLock()
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()

    # -- the base model --------------------------------------------------------------

    def pipeline(self, base_source: str | Path) -> Any:
        """The loaded pipeline for `base_source` (a hub id or local path), loading it if
        needed and releasing a different base first."""
        with self._lock:
            if self._pipeline is not None and self.base_source != str(base_source):
                self.release()
            if self._pipeline is None:
                self._pipeline = load_pipeline(
                    base_source, self.device, self.compile, self.compile_backend
                )
                self._scheduler = self._pipeline.scheduler
                self._compiled = self.compile is not None
                self.base_source = str(base_source)
                self.load_count += 1
            self.last_used = self.clock()
            return self._pipeline

    @property
    def is_loaded(self) -> bool:
        return self._pipeline is not None

    def release(self) -> None:
        """Drop the pipeline and its adapters and give the memory back."""
        with self._lock:
            compiled, self._compiled = self._compiled, False
            self._pipeline = None
            self._scheduler = None
            self._loras.clear()
            self.base_source = None
            self.last_used = None
            if compiled:
                forget_compiled()
            free_memory(self.device)

    def release_if_idle(self, idle_seconds: float) -> bool:
        """Release the pipeline when unused for `idle_seconds`; True when it did.

        A call that is running right now holds the lock, so the cache is not idle.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if (self._pipeline is None or self.last_used is None
                    or self.clock() - self.last_used < idle_seconds):
                return False
            self.release()
            return True
        finally:
            self._lock.release()

    def start_idle_reaper(self, idle_seconds: float, interval: float | None = None) -> None:
        """Check for idleness every `interval` seconds (default idle_seconds / 4, at least
        1) in a daemon thread, for worker processes that sit waiting for jobs. Idempotent."""
        if self._reaper is not None:
            return
        interval = interval or max(idle_seconds / 4, 1)
        self._reaper_stop.clear()

        def reap() -> None:
            while not self._reaper_stop.wait(interval):
                self.release_if_idle(idle_seconds)

        self._reaper = threading.Thread(target=reap, name="pipeline-idle-reaper", daemon=True)
        self._reaper.start()

    def stop_idle_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper_stop.set()
            self._reaper.join()
            self._reaper = None

    # -- LoRA adapters ---------------------------------------------------------------

    @property
    def loaded_loras(self) -> list[str]:
        """Adapter names currently loaded, least recently used first."""
        return list(self._loras)

    def use_loras(self, pipeline: Any, loras: Sequence[LoraChoice]) -> None:
        """Make exactly `loras` [(key, path, weight)] active on `pipeline`.

        Loads each missing adapter once, evicting the least recently used ones beyond
        `max_loras`. With no LoRAs the adapters are disabled, so the output is the plain
        base model's, bit for bit.
        """
        if len(loras) > self.max_loras:
            raise ValueError(f"loras: at most {self.max_loras} at once, got {len(loras)}")
        names = [adapter_name(key) for key, _, _ in loras]
        with self._lock:
            for (_, path, _), name in zip(loras, names, strict=True):
                self._load_adapter(pipeline, name, str(path), keep=names)
            if not names:
                pipeline.disable_lora()
                return
            pipeline.enable_lora()
            pipeline.set_adapters(names, adapter_weights=[float(w) for _, _, w in loras])

    def _load_adapter(self, pipeline: Any, name: str, path: str, keep: list[str]) -> None:
        if self._loras.get(name) == path:
            self._loras.move_to_end(name)
            return
        if name in self._loras:  # same key, another file: the LoRA was replaced
            self._delete_adapter(pipeline, name)
        if Path(path).is_absolute() and not Path(path).is_file():
            # Else diffusers takes it for a hub id and says the id is malformed.
            raise FileNotFoundError(f"LoRA file not found: {path}")
        while len(self._loras) >= self.max_loras:
            oldest = next(n for n in self._loras if n not in keep)
            self._delete_adapter(pipeline, oldest)
        try:
            pipeline.load_lora_weights(path, adapter_name=name)
        except BaseException:
            # A file that failed half-way may have left layers behind; remove them so
            # the name can be loaded again and other calls see a clean model.
            if name in _adapter_names(pipeline):
                pipeline.delete_adapters([name])
            raise
        self._loras[name] = path

    def _delete_adapter(self, pipeline: Any, name: str) -> None:
        pipeline.delete_adapters([name])
        del self._loras[name]

    # -- generating ------------------------------------------------------------------

    def generate(
        self,
        base_source: str | Path,
        params: GenerationParams | Sequence[GenerationParams],
        *,
        loras: Sequence[LoraChoice] = (),
        on_step: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> "Generated":
        """Run one pipeline call and return the images in order, with the parameters each
        was drawn with (`Generated`).

        params: one GenerationParams, or one per prompt: several prompts run as one
            batched call, and must share their shape (size, steps, guidance, scheduler,
            number of images). Each image gets its own CPU torch.Generator seeded with its
            own seed (GenerationParams.image_seeds), so its pixels do not depend on the
            batch it ran in, and CPU-seeded noise is the same on any device.
        loras: [(key, path, weight)]; key is stable per LoRA (e.g. its id).
        on_step(step, total): called after each denoising step, step counting from 1 to
            total, the number of steps the scheduler runs (PNDM runs steps + 1).
        should_cancel(): checked before the run and after each step; True raises Cancelled.

        Any failure frees memory and re-raises; the cache stays usable for the next call.
        """
        import torch

        batch = [params] if isinstance(params, GenerationParams) else list(params)
        if not batch:
            raise ValueError("params: at least one prompt")
        first = batch[0]
        if any(item.shape() != first.shape() for item in batch):
            raise ValueError("params: the prompts of one call share width, height, steps, "
                             "guidance_scale, scheduler and num_images")
        with self._lock:
            try:
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                pipeline = self.pipeline(base_source)
                self.use_loras(pipeline, list(loras))
                pipeline.scheduler = self._make_scheduler(first.scheduler)
                drawn = [item.for_image(seed) for item in batch for seed in item.image_seeds()]
                result = pipeline(
                    prompt=[clean_prompt(item.prompt) for item in batch],
                    negative_prompt=[clean_prompt(item.negative_prompt) for item in batch],
                    width=first.width,
                    height=first.height,
                    num_inference_steps=first.steps,
                    guidance_scale=first.guidance_scale,
                    num_images_per_prompt=first.num_images,
                    generator=[torch.Generator("cpu").manual_seed(item.seed) for item in drawn],
                    callback_on_step_end=_step_callback(on_step, should_cancel),
                )
                return Generated(result.images, drawn, self.sampler_name(first.scheduler))
            except BaseException as error:
                # The traceback keeps the failed frames' locals (latents, activations)
                # alive; clear them so the memory can really be given back.
                traceback.clear_frames(error.__traceback__)
                free_memory(self.device)
                raise
            finally:
                if self._pipeline is not None:
                    self.last_used = self.clock()

    def _make_scheduler(self, name: str | None) -> Any:
        """A fresh scheduler per call (schedulers keep per-run state), built from the
        model's own scheduler config."""
        cls = type(self._scheduler) if name is None else scheduler_class(name)
        return cls.from_config(self._scheduler.config)

    def sampler_name(self, scheduler: str | None) -> str:
        """The A1111 sampler name for a call with `scheduler` on the loaded model."""
        own = type(self._scheduler).__name__ if self._scheduler is not None else None
        return sampler_name(scheduler, own)


def _adapter_names(pipeline: Any) -> set[str]:
    return {name for names in pipeline.get_list_adapters().values() for name in names}


def _step_callback(on_step: Callable[[int, int], None] | None,
                   should_cancel: Callable[[], bool] | None) -> Callable[..., dict]:
    def callback(pipeline: Any, index: int, timestep: object, tensors: dict) -> dict:
        if on_step is not None:
            on_step(index + 1, pipeline.num_timesteps)
        if should_cancel is not None and should_cancel():
            # Raising here stops the loop at once, before the remaining steps and the
            # VAE decode; the caller's `except` frees what the run held.
            raise Cancelled()
        return {}

    return callback


_cache: PipelineCache | None = None
_cache_lock = threading.Lock()


def get_cache() -> PipelineCache:
    """The process's PipelineCache (created on first use; set `max_loras` on it)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = PipelineCache()
        return _cache
