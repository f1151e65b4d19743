"""VAE files: the per-base VAE override A1111 users know as "SD VAE".

    info = inspect_vae(path)                  # latent channels, or NotAVae naming the file
    vae = load_vae(path, "sdxl", dtype)       # an AutoencoderKL, no network
    channels = latent_channels(source)        # of a base (file, folder, hub id) or a VAE file

A VAE file is one safetensors file holding an AutoencoderKL alone: in the original (LDM)
key layout (`encoder.down.0.block.0...`, with or without A1111's `first_stage_model.`
prefix: `vae-ft-mse-840000-ema-pruned.safetensors`, `sdxl_vae.safetensors`) or in
diffusers' (`encoder.down_blocks.0.resnets.0...`: `diffusion_pytorch_model.safetensors`).
Its weights do not say which family it was trained for (SD 1.x/2.x and SDXL VAEs share
their shapes; only the scaling factor differs), so the family is what the registrant
says, and the family's shipped config (configs/<family>/vae) is used unless the file
carries its own (checkpoints.CONFIG_KEY, for a VAE at shapes of its own, as the tests
build). Its latent channels are read from the decoder's first convolution: a base takes
only a VAE whose latents are its own.

No Django here.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoints import CONFIG_KEY, CONFIGS, VAE, read_header, vae_to_original

DECODER_IN = "decoder.conv_in.weight"  # [channels, latent channels, 3, 3] in both layouts
DEFAULT_LATENT_CHANNELS = 4  # every SD 1.x, 2.x and SDXL VAE
# The VAEs that fit each family: SD 1.x and 2.x share theirs (kl-f8, scaling 0.18215).
VAE_FAMILIES = {"sd15": "sd", "sd2": "sd", "sdxl": "sdxl"}


class NotAVae(ValueError):
    """A file that is not a VAE we load; the message says what it is."""


@dataclass(frozen=True)
class VaeFile:
    latent_channels: int
    original_layout: bool  # LDM key names, else diffusers'
    own_config: bool  # carries its config (CONFIG_KEY)


def inspect_vae(path: str | Path) -> VaeFile:
    """What the VAE file at `path` is; NotAVae names anything else (a whole checkpoint, a
    LoRA, a file of other tensors)."""
    from .checkpoints import NotACheckpoint

    name = Path(path).name
    try:
        shapes, metadata = read_header(path)
    except NotACheckpoint as exc:
        raise NotAVae(str(exc)) from exc
    if any(key.startswith(("model.diffusion_model.", "conditioner.", "cond_stage_model."))
           for key in shapes):
        raise NotAVae(f"{name} is a whole checkpoint, not a VAE alone (register it as a "
                      "base model).")
    if any("lora" in key.lower() for key in shapes):
        raise NotAVae(f"{name} is a LoRA, not a VAE (register it as a LoRA).")
    shapes = {key.removeprefix(VAE): shape for key, shape in shapes.items()}
    decoder_in = shapes.get(DECODER_IN)
    if decoder_in is None or len(decoder_in) != 4 or "encoder.conv_in.weight" not in shapes:
        raise NotAVae(f"{name} is not a VAE: it has no encoder and decoder "
                      f"({DECODER_IN}) in the original or the diffusers layout.")
    original = any(key.startswith(("encoder.down.", "decoder.up.")) for key in shapes)
    return VaeFile(latent_channels=int(decoder_in[1]), original_layout=original,
                   own_config=CONFIG_KEY in metadata)


def latent_channels(source: str | Path) -> int:
    """The latent channels of a base (a single file, a diffusers folder; a hub id: the
    families' 4) or of a VAE file."""
    path = Path(str(source))
    if path.is_dir():
        config = path / "vae" / "config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("latent_channels",
                                                          DEFAULT_LATENT_CHANNELS))
        return DEFAULT_LATENT_CHANNELS
    if not path.is_file():
        return DEFAULT_LATENT_CHANNELS  # a hub id
    shapes, _ = read_header(path)
    for key in (VAE + DECODER_IN, DECODER_IN):
        if key in shapes and len(shapes[key]) == 4:
            return int(shapes[key][1])
    return DEFAULT_LATENT_CHANNELS


def vae_config(path: str | Path, family: str) -> dict[str, Any]:
    """The AutoencoderKL config of the VAE file: its own (CONFIG_KEY), else its family's."""
    _, metadata = read_header(path)
    if CONFIG_KEY in metadata:
        carried = json.loads(metadata[CONFIG_KEY])
        return dict(json.loads(carried["vae"]["config.json"]))
    return dict(json.loads((CONFIGS / family / "vae" / "config.json").read_text()))


def load_vae(path: str | Path, family: str, dtype: Any) -> Any:
    """The AutoencoderKL of a VAE file, in `dtype`, on the CPU; nothing downloaded."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    info = inspect_vae(path)
    config = vae_config(path, family)
    state = {key.removeprefix(VAE): value for key, value in load_file(str(path)).items()}
    if info.original_layout:
        state = convert_ldm_vae_checkpoint(state, config)
    vae = AutoencoderKL.from_config(config)
    vae.load_state_dict(state, strict=True)
    return vae.to(dtype=dtype).eval()


def write_vae_file(vae: Any, path: str | Path, *, carry_config: bool = True) -> Path:
    """Write an AutoencoderKL as a VAE file in the original layout, as A1111's are
    (carry_config: its config in the file, for a VAE at shapes of its own)."""
    from safetensors.torch import save_file

    config = dict(vae.config)
    tensors = vae_to_original(vae.state_dict(), config)
    metadata = None
    if carry_config:
        metadata = {CONFIG_KEY: json.dumps({"vae": {"config.json": vae.to_json_string()}})}
    path = Path(path)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path),
              metadata=metadata)
    return path
