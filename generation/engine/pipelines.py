"""The per-process pipeline cache: one base model kept loaded, LoRAs hot-swapped as adapters.

A worker process asks `get_cache()` for the cache and calls `generate(...)` per job. The
base pipeline loads on first use and stays loaded; asking for another base releases the
old one first (one base at a time: two SD pipelines rarely fit one GPU). Each LoRA loads
once, as a peft adapter named after the caller's stable key, and later calls switch
between loaded adapters with `set_adapters`, which costs milliseconds instead of a reload.
At most `max_loras` adapters stay loaded; the least recently used one is deleted first.
With `compile` (a torch.compile mode, IMAGINEER_COMPILE), the base's UNet is compiled as
it loads (device.compile_unet).

Image to image runs on the same loaded base: the img2img and inpainting pipelines are
made from its components (`from_pipe`: the same UNet, VAE, text encoder and adapters, no
second copy), once per base. A call given a `Source` (a picture, and for inpainting a
mask) draws from it: img2img at `strength`; inpainting with the mask blurred by
`mask_blur` and, with `keep_unmasked`, the source's own pixels outside it; outpainting
adds pixels on each side (stretched from the edge, then inpainted). A base whose UNet
takes 9 channels (an inpainting checkpoint) runs every call through the inpainting
pipeline, which gives it the masked picture; a 4-channel one inpaints by blending the
source's latents outside the mask at each step (diffusers' masked-latents path). The
hires fix draws, upscales the pictures (`upscaler`, Lanczos by default) and draws again
from them at `hires_strength`; a source smaller than the call's size is brought to it by the
same `upscaler` (the image pages' "Upscale"). An upscaler model (upscalers.py, the ESRGAN
family) is loaded in the cache like the base, one at a time (`upscaler_model`), and
released with it.

No Django here: sources are hub ids or local paths, results are PIL images.
"""

import re
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .checkpoints import folder_pipeline_class, inspect_checkpoint, load_single_file
from .clip_tokenizer import clean_prompt
from .device import Device, forget_compiled, free_memory, pick_device, prepare_pipeline
from .params import GenerationParams
from .vae import load_vae

# A LoRA for one call: (a stable key, e.g. its id; its file; its weight).
LoraChoice = tuple[object, str | Path, float]
# A VAE override of the base: (its file, the family whose config it takes: engine/vae.py).
VaeChoice = tuple[str | Path, str]


class Cancelled(Exception):
    """Raised out of `generate` when `should_cancel()` said yes between two steps."""


# An upscaler: (picture, (width, height)) -> the picture at that size.
Upscaler = Callable[[Any, tuple[int, int]], Any]


def lanczos(picture: Any, size: tuple[int, int]) -> Any:
    """The plain resampler: Pillow's Lanczos."""
    from PIL import Image

    return picture.resize(size, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Source:
    """What a call starts from: a picture (PIL, any size) and, for inpainting, a mask of
    its size (white: draw again, black: keep; grey levels are thresholded at half)."""

    image: Any
    mask: Any = None

    def mode(self, params: GenerationParams) -> str:
        """"inpaint" with a mask or pixels to add, else "img2img"."""
        return "inpaint" if self.mask is not None or any(params.outpaint()) else "img2img"


def call_mode(source: Source | None, params: GenerationParams) -> str:
    """What a call does: "txt2img", "img2img" or "inpaint" (the PNG text says which)."""
    return "txt2img" if source is None else source.mode(params)


def canvas(source: Source, params: GenerationParams,
           upscaler: Upscaler | None = None) -> tuple[Any, Any]:
    """The source drawn on the call's canvas (RGB, params.canvas_size()) and its mask (L,
    the same size; None for img2img): the picture resized to width x height (made larger
    by `upscaler` when one is given, else Lanczos), the outpainted sides stretched from its
    edge and masked white."""
    import numpy as np
    from PIL import Image

    left, right, up, down = params.outpaint()
    inner = (params.width, params.height)
    image = source.image.convert("RGB")
    resize = upscaler if upscaler is not None and _smaller(image, params) else lanczos
    picture = np.asarray(resize(image, inner))
    if source.mask is not None:
        mask = np.asarray(source.mask.convert("L").resize(inner, Image.Resampling.NEAREST))
        mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    elif any(params.outpaint()):
        mask = np.zeros(picture.shape[:2], dtype=np.uint8)
    else:
        return Image.fromarray(picture), None
    sides = ((up, down), (left, right))
    picture = np.pad(picture, (*sides, (0, 0)), mode="edge")
    mask = np.pad(mask, sides, constant_values=255)
    return Image.fromarray(picture), Image.fromarray(mask, mode="L")


def _smaller(picture: Any, params: GenerationParams) -> bool:
    """Whether a source picture is smaller than the size it is drawn at (upscaled)."""
    return bool(picture.width < params.width or picture.height < params.height)


def blurred(mask: Any, radius: int) -> Any:
    """The mask with a Gaussian blur of `radius` pixels (A1111's "Mask blur")."""
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def keep_unmasked(drawn: Any, picture: Any, soft_mask: Any) -> Any:
    """`drawn` inside the (blurred) mask, `picture`'s own pixels outside it: where the
    mask is black, the source's pixels exactly."""
    from PIL import Image

    return Image.composite(drawn.convert("RGB"), picture, soft_mask)


def is_inpainting_unet(pipeline: Any) -> bool:
    """Whether the pipeline's UNet is an inpainting one (9 input channels: the noisy
    latents, the mask and the masked picture's latents)."""
    return int(pipeline.unet.config.in_channels) == 9


class Generated(list):
    """The images of one `generate` call in output order (prompt 0's, then prompt 1's...),
    with what they were drawn with, worked out once, here: `params[i]`, the parameters of
    image i (its own seed, one image), and `sampler`, the A1111 sampler name of the call."""

    def __init__(self, images: Sequence[Any], params: Sequence[GenerationParams],
                 sampler: str, mode: str = "txt2img", upscaler: str = "Lanczos") -> None:
        super().__init__(images)
        self.params = list(params)
        self.sampler = sampler
        self.mode = mode
        self.upscaler = upscaler

    def parameters_text(self, index: int, **model: Any) -> str:
        """The A1111 `parameters` text of image `index` (model_name, model_sha256, vae_name,
        vae_sha256, loras)."""
        return self.params[index].parameters_text(sampler=self.sampler, mode=self.mode,
                                                  upscaler=self.upscaler, **model)


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


def is_sdxl(pipeline: Any) -> bool:
    """Whether the pipeline is an SDXL one (two text encoders, size conditioning)."""
    return getattr(pipeline, "text_encoder_2", None) is not None


def load_pipeline(source: str | Path, device: Device, compile: str | None = None,
                  compile_backend: str = "inductor", vae: VaeChoice | None = None) -> Any:
    """Load a pipeline from a hub id, a diffusers folder (SD 1.x/2.x or SDXL, as its
    model_index.json says) or a single-file checkpoint, with `vae` (a VAE file) in place of
    its own when given; `compile`: a torch.compile mode for its UNet, None for eager (see
    prepare_pipeline)."""
    return prepare_pipeline(load_components(source, device.dtype, vae=vae), device, compile,
                            compile_backend)


def load_components(source: str | Path, dtype: Any, vae: VaeChoice | None = None) -> Any:
    """The pipeline of a hub id, a diffusers folder or a single-file checkpoint, on the CPU
    in `dtype` (the trainer takes its components from it too); `vae`: a VAE file loaded in
    place of the base's own (engine/vae.py)."""
    import diffusers

    path = Path(str(source))
    options: dict[str, Any] = {"dtype": dtype}
    if vae is not None:
        options["vae"] = load_vae(vae[0], vae[1], dtype)
    if path.is_file():
        # A single-file checkpoint (A1111's layout): its family read from its keys, its
        # configs and tokenizers the project's own, nothing from the hub (checkpoints.py).
        pipeline = load_single_file(path, inspect_checkpoint(path), options)
    else:
        name = folder_pipeline_class(source)
        if name == "StableDiffusionPipeline":
            # The NSFW checker is a second 1.2 GB model; A1111 and most team setups run
            # without it, and a diffusers folder built locally has none.
            options.update(safety_checker=None, requires_safety_checker=False)
        pipeline = getattr(diffusers, name).from_pretrained(str(source), **options)
    alias_text_model(pipeline)
    return pipeline


def alias_text_model(pipeline: Any) -> None:
    """Make clip skip work: transformers 5.6 flattened CLIPTextModel (no `text_model`
    inside), and diffusers' clip skip still applies `text_encoder.text_model.
    final_layer_norm`. Each flattened encoder is aliased as its own `text_model`, outside
    torch's module registry (so modules() and state_dict() see no cycle)."""
    for name in ("text_encoder", "text_encoder_2"):
        encoder = getattr(pipeline, name, None)
        if encoder is not None and not hasattr(encoder, "text_model"):
            object.__setattr__(encoder, "text_model", encoder)


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
        self.vae_source: str | None = None  # the VAE file loaded in place of the base's own
        self.load_count = 0  # base pipeline loads since the cache was made
        self.last_used: float | None = None  # clock() at the end of the last use, or None
        self._pipeline: Any = None
        self._compiled = False  # whether the loaded pipeline's UNet is compiled
        self._scheduler: Any = None  # the model's own scheduler, kept to build others from
        self._derived: dict[str, Any] = {}  # "img2img"/"inpaint" -> a pipeline of the base's
        # adapter name -> LoRA file path, least recent first
        self._loras: OrderedDict[str, str] = OrderedDict()
        self._upscaler: Any = None  # the loaded upscaler model (upscalers.ModelUpscaler)
        self.upscaler_loads = 0  # upscaler model loads since the cache was made
        self._lock = threading.RLock()
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()

    # -- the base model --------------------------------------------------------------

    def pipeline(self, base_source: str | Path, vae: VaeChoice | None = None) -> Any:
        """The loaded pipeline for `base_source` (a hub id or local path) with `vae` (a VAE
        file in place of its own; None: its own), loading it if needed and releasing a
        different base, or the same base with another VAE, first."""
        vae_source = None if vae is None else str(vae[0])
        with self._lock:
            if self._pipeline is not None and (self.base_source, self.vae_source) != (
                    str(base_source), vae_source):
                self.release()
            if self._pipeline is None:
                self._pipeline = load_pipeline(
                    base_source, self.device, self.compile, self.compile_backend, vae=vae
                )
                self._scheduler = self._pipeline.scheduler
                self._compiled = self.compile is not None
                self.base_source = str(base_source)
                self.vae_source = vae_source
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
            self._derived.clear()
            self._loras.clear()
            self._upscaler = None
            self.base_source = None
            self.vae_source = None
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

    # -- upscaler models --------------------------------------------------------------

    def upscaler_model(self, source: str | Path) -> Any:
        """The loaded upscaler model of the file `source` (upscalers.load_upscaler), loading
        it if needed: one at a time, another one released first, and released with the
        base (release())."""
        from .upscalers import load_upscaler

        with self._lock:
            if self._upscaler is not None and self._upscaler.path != str(source):
                self._upscaler = None
                free_memory(self.device)
            if self._upscaler is None:
                self._upscaler = load_upscaler(source, self.device.type)
                self.upscaler_loads += 1
            return self._upscaler

    @property
    def loaded_upscaler(self) -> str | None:
        """The file of the loaded upscaler model, or None."""
        return None if self._upscaler is None else str(self._upscaler.path)

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

    def derived(self, pipeline: Any, mode: str) -> Any:
        """The pipeline that does `mode` ("txt2img", "img2img", "inpaint") with the
        loaded base's components (made once per base; adapters are the base's)."""
        if mode == "txt2img":
            return pipeline
        if mode not in self._derived:
            import diffusers

            kind = "Inpaint" if mode == "inpaint" else "Img2Img"
            family = "StableDiffusionXL" if is_sdxl(pipeline) else "StableDiffusion"
            self._derived[mode] = getattr(diffusers, f"{family}{kind}Pipeline").from_pipe(
                pipeline)
        return self._derived[mode]

    def generate(
        self,
        base_source: str | Path,
        params: GenerationParams | Sequence[GenerationParams],
        *,
        loras: Sequence[LoraChoice] = (),
        vae: VaeChoice | None = None,
        source: Source | None = None,
        upscaler: Upscaler | None = None,
        upscaler_name: str = "Lanczos",
        on_step: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> "Generated":
        """Run one pipeline call and return the images in order, with the parameters each
        was drawn with (`Generated`).

        params: one GenerationParams, or one per prompt: several prompts run as one
            batched call, and must share their shape (size, steps, guidance, scheduler,
            number of images, the image to image settings). Each image gets its own CPU
            torch.Generator seeded with its own seed (GenerationParams.image_seeds), so
            its pixels do not depend on the batch it ran in, and CPU-seeded noise is the
            same on any device.
        loras: [(key, path, weight)]; key is stable per LoRA (e.g. its id).
        vae: (a VAE file, its family) in place of the base's own VAE; the cache keeps one
            base with one VAE loaded, and another VAE reloads the base.
        source: the picture (and mask) every prompt of the call starts from; None: text
            to image. The hires fix (params.hires_scale) is for text to image only.
        upscaler: how the hires fix upscales, and how a source smaller than the call's
            size is brought to it (lanczos when None; an upscaler model: upscaler_model());
            upscaler_name is what the PNG text calls it ("Hires upscaler", "Upscaler").
        on_step(step, total): called after each denoising step, step counting from 1 to
            total, the number of steps the scheduler runs (PNDM runs steps + 1; img2img
            about strength x steps; the hires fix counts both passes).
        should_cancel(): checked before the run and after each step; True raises Cancelled.

        Any failure frees memory and re-raises; the cache stays usable for the next call.
        """
        batch = [params] if isinstance(params, GenerationParams) else list(params)
        if not batch:
            raise ValueError("params: at least one prompt")
        first = batch[0]
        if any(item.shape() != first.shape() for item in batch):
            raise ValueError("params: the prompts of one call share width, height, steps, "
                             "guidance_scale, scheduler, num_images and the image to image "
                             "settings")
        if source is not None and first.hires_scale:
            raise ValueError("hires: the hires fix is for text to image, not from a source")
        with self._lock:
            try:
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                pipeline = self.pipeline(base_source, vae)
                self.use_loras(pipeline, list(loras))
                drawn = [item.for_image(seed) for item in batch for seed in item.image_seeds()]
                passes = 2 if first.hires_scale else 1
                images = self._draw(pipeline, batch, drawn, source,
                                    _pass_steps(on_step, 0, passes), should_cancel, upscaler)
                if first.hires_scale:
                    size = first.result_size()
                    upscaled = [(upscaler or lanczos)(image, size) for image in images]
                    hires = [replace(item, strength=item.hires_strength, width=size[0],
                                     height=size[1], hires_scale=0.0) for item in batch]
                    images = self._draw(pipeline, hires, drawn, upscaled,
                                        _pass_steps(on_step, 1, passes), should_cancel)
                if source is not None and not _smaller(source.image, first):
                    upscaler_name = "Lanczos"  # the source was not made larger: none used
                return Generated(images, drawn, self.sampler_name(first.scheduler),
                                 mode=call_mode(source, first), upscaler=upscaler_name)
            except BaseException as error:
                # The traceback keeps the failed frames' locals (latents, activations)
                # alive; clear them so the memory can really be given back.
                traceback.clear_frames(error.__traceback__)
                free_memory(self.device)
                raise
            finally:
                if self._pipeline is not None:
                    self.last_used = self.clock()

    def _draw(self, pipeline: Any, batch: Sequence[GenerationParams],
              drawn: Sequence[GenerationParams], source: Source | Sequence[Any] | None,
              on_step: Callable[[int, int], None] | None,
              should_cancel: Callable[[], bool] | None,
              upscaler: Upscaler | None = None) -> list[Any]:
        """One pipeline call: text to image, or from `source` (a Source shared by every
        image, brought to the call's size by `upscaler`, or one picture per output image
        for the hires pass)."""
        import torch
        from PIL import Image

        first = batch[0]
        arguments: dict[str, Any] = {}
        mode = "txt2img"
        pictures: list[Any] = []
        mask = soft_mask = None
        if isinstance(source, Source):
            picture, mask = canvas(source, first, upscaler)
            pictures = [picture] * len(drawn)
            mode = source.mode(first)
        elif source is not None:
            pictures = list(source)
            mode = "img2img"
        if is_inpainting_unet(pipeline):
            # An inpainting checkpoint always gets a picture and a mask: without a
            # source, a grey canvas drawn over whole (strength 1).
            if not pictures:
                grey = Image.new("RGB", first.canvas_size(), (127, 127, 127))
                pictures = [grey] * len(drawn)
            if mask is None:
                mask = Image.new("L", first.canvas_size(), 255)
            mode = "inpaint"
        if mode != "txt2img":
            arguments["image"] = pictures
            arguments["strength"] = first.strength if source is not None else 1.0
        if mode == "inpaint":
            soft_mask = blurred(mask, first.mask_blur)
            arguments["mask_image"] = [soft_mask] * len(drawn)
        if source is not None and int(first.steps * first.strength) < 1:
            # Not one step to take (diffusers refuses): the source, unchanged, is the answer.
            return [picture.copy() for picture in pictures]
        call = self.derived(pipeline, mode)
        call.scheduler = self._make_scheduler(first.scheduler)
        result = call(
            prompt=[clean_prompt(item.prompt) for item in batch],
            negative_prompt=[clean_prompt(item.negative_prompt) for item in batch],
            width=first.canvas_size()[0],
            height=first.canvas_size()[1],
            num_inference_steps=first.steps,
            guidance_scale=first.guidance_scale,
            num_images_per_prompt=first.num_images,
            generator=[torch.Generator("cpu").manual_seed(item.seed) for item in drawn],
            callback_on_step_end=_step_callback(on_step, should_cancel),
            # diffusers counts the layers skipped: A1111's clip skip 2 is one.
            clip_skip=first.clip_skip - 1 or None,
            **arguments,
        )
        images = list(result.images)
        if soft_mask is not None and first.keep_unmasked and isinstance(source, Source):
            images = [keep_unmasked(image, picture, soft_mask)
                      for image, picture in zip(images, pictures, strict=True)]
        return images

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


def _pass_steps(on_step: Callable[[int, int], None] | None, index: int,
                passes: int) -> Callable[[int, int], None] | None:
    """on_step for pass `index` of `passes` (the hires fix has two): the steps of all
    passes counted as one run, each pass as long as the one being run."""
    if on_step is None or passes == 1:
        return on_step

    def step(done: int, total: int) -> None:
        on_step(index * total + done, passes * total)

    return step


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
