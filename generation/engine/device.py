"""Where the pipeline runs: CUDA with fp16 weights when a GPU is present, else the CPU in fp32.

Attention: with torch 2, diffusers uses `scaled_dot_product_attention` (SDPA: flash or
memory-efficient kernels on CUDA) by default, so nothing has to be switched on for it.
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


def prepare_pipeline(pipeline: Any, device: Device) -> Any:
    """Move a loaded pipeline to `device` and turn on the memory-friendly options."""
    pipeline.to(device.type)
    pipeline.set_progress_bar_config(disable=True)
    # Decode a batch's latents one image at a time: the VAE decoder's activations are the
    # peak of a batched call. It also keeps a prompt's decode independent of its batch.
    pipeline.vae.enable_slicing()
    if device.is_cuda:
        # Large images (wider than the VAE's sample size) are decoded in overlapping
        # tiles, so a 2048x2048 decode fits in memory. Smaller images are untouched.
        pipeline.vae.enable_tiling()
    return pipeline


def free_memory(device: Device | None = None) -> None:
    """Give back what Python and the CUDA caching allocator hold but no longer use."""
    import gc

    import torch

    gc.collect()
    if (device is None or device.is_cuda) and torch.cuda.is_available():
        torch.cuda.empty_cache()
