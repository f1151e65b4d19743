"""LoRA files: check one before it is registered, hash it, and make random ones for tests.

Only safetensors files are accepted: a pickled .ckpt/.pt can run code when loaded.

Which family a LoRA fits is read from its shapes. The `to_k`/`to_v` projections of the
UNet's cross-attention layers (`attn2`) take the text encoder's hidden states, so their
LoRA "down" matrices have the text encoder's width as their input size:

    768 -> sd15 (CLIP ViT-L)     1024 -> sd2 (OpenCLIP ViT-H)     2048 -> sdxl (both CLIPs)

A LoRA without such layers falls back to the family its trainer wrote in the file's
metadata (kohya's `ss_base_model_version`, or `modelspec.architecture`). Shapes win over
metadata when both are present: the shapes are what has to fit.

The rule of `check_lora_family(path, family, base_dir)`:
- a standard width must be the width of `family`;
- any other width (the demo model's is 32) is accepted only when `base_dir` is given and
  the base UNet's own `cross_attention_dim` is that width;
- when `base_dir` is given, the width must equal the base's in every case.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FAMILY_CROSS_ATTENTION_DIMS = {"sd15": 768, "sd2": 1024, "sdxl": 2048}
FAMILIES = tuple(FAMILY_CROSS_ATTENTION_DIMS)

# A tensor is a LoRA weight in any of the key styles in use: peft (`lora_A`/`lora_B`),
# diffusers (`lora.down`/`lora.up`, `to_k_lora.down`) and kohya (`lora_down`/`lora_up`).
_LORA_KEY = re.compile(r"lora(_A|_B|_down|_up|[._]down|[._]up)\.weight$")
_DOWN_KEY = re.compile(r"lora(_A|_down|[._]down)\.weight$")
_CROSS_ATTENTION_KV = re.compile(r"attn2[._](processor[._])?to_[kv]")

# Family names trainers write into metadata, by prefix.
_METADATA_FAMILIES = (
    ("sdxl", "sdxl"),
    ("stable-diffusion-xl", "sdxl"),
    ("sd_v2", "sd2"),
    ("stable-diffusion-v2", "sd2"),
    ("sd_v1", "sd15"),
    ("stable-diffusion-v1", "sd15"),
)


class InvalidLora(Exception):
    """The file is not a usable LoRA; the message says why."""


@dataclass
class LoraInfo:
    cross_attention_dim: int | None  # width of the text features it expects
    family: str | None  # sd15 / sd2 / sdxl, None when the width is not a standard one
    rank: int  # the largest rank of its layers
    tensors: int  # number of LoRA weight tensors
    metadata: dict = field(default_factory=dict)  # the file's string metadata


def family_for_dim(dim: int) -> str | None:
    for family, family_dim in FAMILY_CROSS_ATTENTION_DIMS.items():
        if family_dim == dim:
            return family
    return None


def _metadata_family(metadata: Mapping[str, str]) -> str | None:
    for key in ("ss_base_model_version", "modelspec.architecture"):
        value = metadata.get(key, "").lower()
        for prefix, family in _METADATA_FAMILIES:
            if value.startswith(prefix):
                return family
    return None


def inspect_lora(path: str | Path) -> LoraInfo:
    """Read a LoRA file's header (not its weights) and describe it; raise InvalidLora."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidLora(f"{path.name} is not a readable safetensors file ({error})") from error
    with handle:
        metadata = handle.metadata() or {}
        shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}

    lora_keys = [key for key in shapes if _LORA_KEY.search(key)]
    if not lora_keys:
        raise InvalidLora(
            f"{path.name} holds no LoRA weights (no lora_A/lora_B, lora_down/lora_up or "
            "lora.down/lora.up tensors); is it a full checkpoint or another adapter type?"
        )
    down_shapes = [shapes[key] for key in lora_keys if _DOWN_KEY.search(key)]
    dims = {
        shapes[key][1]
        for key in lora_keys
        if _DOWN_KEY.search(key) and _CROSS_ATTENTION_KV.search(key) and len(shapes[key]) >= 2
    }
    if len(dims) > 1:
        raise InvalidLora(
            f"{path.name} mixes cross-attention widths {sorted(dims)}; it fits no model"
        )
    dim = dims.pop() if dims else None
    family = family_for_dim(dim) if dim is not None else _metadata_family(metadata)
    return LoraInfo(
        cross_attention_dim=dim,
        family=family,
        rank=max((shape[0] for shape in down_shapes), default=0),
        tensors=len(lora_keys),
        metadata=dict(metadata),
    )


def unet_config(base: str | Path) -> dict | None:
    """The UNet config of a diffusers base model folder, or of a single-file checkpoint that
    carries its configs (checkpoints.CONFIG_KEY); None when there is none to read."""
    from .checkpoints import CONFIG_KEY, NotACheckpoint, read_header

    base = Path(base)
    try:
        if base.is_dir():
            file = base / "unet" / "config.json"
            return json.loads(file.read_text()) if file.is_file() else None
        if base.is_file():
            carried = read_header(base)[1].get(CONFIG_KEY)
            return json.loads(json.loads(carried)["unet"]["config.json"]) if carried else None
    except (OSError, ValueError, KeyError, NotACheckpoint):
        return None
    return None


def has_unet_config(base: str | Path) -> bool:
    return unet_config(base) is not None


def unet_cross_attention_dim(base_dir: str | Path) -> int:
    """The cross-attention width of a base model's UNet (a diffusers folder, or a single
    file carrying its configs)."""
    config = unet_config(base_dir)
    if config is None:
        raise InvalidLora(f"{Path(base_dir).name}: no UNet config to check the LoRA against")
    return config["cross_attention_dim"]


def check_lora_family(path: str | Path, family: str,
                      base_dir: str | Path | None = None) -> LoraInfo:
    """Check that the LoRA at `path` fits `family` (and the base model in `base_dir`, a
    diffusers folder, when given); return its LoraInfo or raise InvalidLora."""
    if family not in FAMILY_CROSS_ATTENTION_DIMS:
        raise ValueError(f"family: {family!r} is not one of {', '.join(FAMILIES)}")
    info = inspect_lora(path)
    name = Path(path).name
    base_dim = unet_cross_attention_dim(base_dir) if base_dir is not None else None
    dim = info.cross_attention_dim

    if dim is None:
        if info.family is None:
            raise InvalidLora(
                f"{name}: cannot tell its family, it has no cross-attention to_k/to_v "
                "layers and no base model in its metadata"
            )
        if info.family != family:
            raise InvalidLora(f"{name} is a {info.family} LoRA (metadata), not {family}")
        return info
    if base_dim is not None and dim != base_dim:
        raise InvalidLora(
            f"{name} expects text features of width {dim}; the base model's UNet has "
            f"cross_attention_dim {base_dim}"
        )
    if info.family is not None and info.family != family:
        raise InvalidLora(f"{name} is a {info.family} LoRA (width {dim}), not {family}")
    if info.family is None and base_dim is None:
        raise InvalidLora(
            f"{name} has cross-attention width {dim}, which is no standard family's "
            f"({', '.join(f'{f} {d}' for f, d in FAMILY_CROSS_ATTENTION_DIMS.items())}); "
            "check it against its base model folder"
        )
    return info


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


lora_sha256 = file_sha256


def make_random_lora(base_dir: str | Path, out_path: str | Path, rank: int = 4, seed: int = 0,
                     scale: float = 1.0, kohya: bool = False) -> Path:
    """Write a LoRA with random, non-zero weights for the UNet in `base_dir` to `out_path`.

    For tests and benchmarks: a peft LoraConfig on to_q/to_k/to_v/to_out.0, saved the way
    diffusers' LoRA training example saves, so `load_lora_weights` loads it; with `kohya`,
    in kohya's layout (lora_unet_*, lora_down/lora_up, alpha) as A1111 and ComfyUI keep
    LoRAs. The "up" weights are drawn with standard deviation `scale` (training starts them
    at zero), which makes the LoRA change the pixels visibly. Same seed, same file.
    """
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(str(base_dir), subfolder="unet")
    unet.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(unet.named_parameters()):
            if "lora_A" in name:
                std = 1.0 / rank
            elif "lora_B" in name:
                std = scale
            else:
                continue
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    peft_state = get_peft_model_state_dict(unet)
    layers = convert_state_dict_to_diffusers(peft_state)

    # Write next to the target and move into place, so no half-written file is left.
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(dir=out_path.parent, prefix=".lora-")
    try:
        if kohya:
            from diffusers.utils import convert_state_dict_to_kohya
            from safetensors.torch import save_file

            state = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_state.items()})
            save_file({key: value.contiguous() for key, value in state.items()},
                      str(Path(staging) / "lora.safetensors"),
                      metadata={"ss_network_module": "networks.lora",
                                "ss_network_dim": str(rank), "ss_network_alpha": str(rank)})
        else:
            StableDiffusionPipeline.save_lora_weights(
                staging, unet_lora_layers=layers, weight_name="lora.safetensors"
            )
        os.replace(Path(staging) / "lora.safetensors", out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_path
