"""Where the pipeline runs: CUDA with fp16 weights when a GPU is present, else the CPU in fp32.

Attention: with torch 2, diffusers uses `scaled_dot_product_attention` (SDPA: flash or
memory-efficient kernels on CUDA) by default, so nothing has to be switched on for it.

Compiled mode (opt-in, `IMAGINEER_COMPILE`): the UNet, where nearly all the time of a call
goes, is put in channels_last layout and compiled in place with `torch.compile`. The
first call of each new shape (image size, batch) pays for compiling; later calls of that
shape run the compiled code. Loading or switching a LoRA changes the modules, which makes
torch compile again for that shape (it falls back to eager after its recompile limit).
So it pays off for a worker that serves many jobs of few shapes and few LoRAs.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Device:
    type: str  # what torch's .to() takes: "cuda", "cuda:1" or "cpu"
    dtype: object  # a torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.type.startswith("cuda")


def pick_device(prefer: object = None, *, training: bool = False) -> Device:
    """The device to run on (the engine's and the trainer's one rule): `prefer` ("cuda",
    "cuda:1", "cpu") when given, else CUDA if available.

    On CUDA, inference runs in fp16, which halves the memory of the weights and is what
    SD 1.5 is served in; training runs in bf16 where the GPU has it (its range keeps the
    gradients from overflowing), else fp16 with a gradient scaler. CPUs have no fast
    half-precision kernels, so they stay in fp32.
    """
    import torch

    kind = str(prefer or ("cuda" if torch.cuda.is_available() else "cpu"))
    if kind.startswith("cuda"):
        if training and torch.cuda.is_bf16_supported():
            return Device(kind, torch.bfloat16)
        return Device(kind, torch.float16)
    return Device(kind, torch.float32)


# torch.compile modes a worker may run in; "default" is what IMAGINEER_COMPILE=1 means.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile_mode(value: str | None) -> str | None:
    """The compile mode an IMAGINEER_COMPILE value asks for, or None for eager.

    "" and 0/false/no/off: eager; 1/true/yes/on: "default"; or a name in COMPILE_MODES.
    """
    value = (value or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return None
    if value in ("1", "true", "yes", "on"):
        return "default"
    if value in COMPILE_MODES:
        return value
    raise ValueError(
        f"IMAGINEER_COMPILE must be 0, 1 or one of {', '.join(COMPILE_MODES)}, not {value!r}"
    )


def compile_unet(pipeline: Any, mode: str = "default", backend: str = "inductor") -> Any:
    """Compile the pipeline's UNet in place (`nn.Module.compile`), in channels_last layout.

    In place, the UNet stays the same module: LoRA loading and `set_adapters` work on it
    as on an eager one. `backend` is torch.compile's ("inductor" generates kernels; "eager"
    only traces, which the CPU smoke check uses: inductor takes minutes on a small CPU).
    """
    import torch

    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode: {mode!r} is not one of {', '.join(COMPILE_MODES)}")
    pipeline.unet.to(memory_format=torch.channels_last)
    options: dict[str, Any] = {"backend": backend}
    if backend == "inductor":
        options["mode"] = mode
    pipeline.unet.compile(**options)
    return pipeline


def prepare_pipeline(
    pipeline: Any, device: Device, compile: str | None = None, compile_backend: str = "inductor"
) -> Any:
    """Move a loaded pipeline to `device` and turn on the memory-friendly options; with
    `compile` (a mode of COMPILE_MODES), compile its UNet (see compile_unet)."""
    pipeline.to(device.type)
    pipeline.set_progress_bar_config(disable=True)
    # Decode a batch's latents one image at a time: the VAE decoder's activations are the
    # peak of a batched call. It also keeps a prompt's decode independent of its batch.
    pipeline.vae.enable_slicing()
    if device.is_cuda:
        # Large images (wider than the VAE's sample size) are decoded in overlapping
        # tiles, so a 2048x2048 decode fits in memory. Smaller images are untouched.
        pipeline.vae.enable_tiling()
    if device.dtype == _float16():
        upcast_on_overflow(pipeline.vae)
    if compile is not None:
        compile_unet(pipeline, compile, compile_backend)
    return pipeline


def _float16() -> object:
    import torch

    return torch.float16


def upcast_on_overflow(vae: Any) -> Any:
    """Make a half-precision VAE decode again in fp32 when its fp16 decode overflows.

    SDXL's VAE overflows to inf/NaN in fp16 at some sizes (black pictures). Its config
    says `force_upcast`, and diffusers' SDXL pipelines then decode in fp32 every time; a
    VAE whose config does not say so (a fine-tune, an SD 1.x VAE pushed too far) would
    hand back NaN. Here the decode is checked: a result that is not finite is decoded
    again in fp32 (the VAE moved to fp32 for that call, then back), and `force_upcast` is
    set on the VAE's config, so that diffusers' SDXL pipelines decode in fp32 from then
    on. The worker's log says so once. Returns the VAE.
    """
    import logging

    import torch

    decode = vae.decode

    def checked(latents: Any, *args: Any, **kwargs: Any) -> Any:
        out = decode(latents, *args, **kwargs)
        sample = out[0] if isinstance(out, tuple) else out.sample
        if torch.isfinite(sample).all():
            return out
        dtype = vae.dtype
        logging.getLogger(__name__).warning(
            "The VAE's %s decode overflowed (not finite): decoding in fp32, and from now "
            "on (force_upcast)", str(dtype).removeprefix("torch."))
        vae.to(torch.float32)
        try:
            return decode(latents.float(), *args, **kwargs)
        finally:
            vae.to(dtype)
            vae.register_to_config(force_upcast=True)

    vae.decode = checked
    return vae


def free_memory(device: Device | None = None) -> None:
    """Give back what Python and the CUDA caching allocator hold but no longer use."""
    import gc

    import torch

    gc.collect()
    if (device is None or device.is_cuda) and torch.cuda.is_available():
        torch.cuda.empty_cache()


def forget_compiled() -> None:
    """Drop torch.compile's compiled code and its CUDA graphs (when a compiled pipeline
    is released: they belong to modules that are gone)."""
    import torch

    torch.compiler.reset()
