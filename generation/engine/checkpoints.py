"""Single-file checkpoints (A1111's, ComfyUI's, a model site's `.safetensors`), offline.

    info = inspect_checkpoint(path)          # family from the keys, or NotACheckpoint
    pipeline = load_single_file(path, info, dtype)

`inspect_checkpoint` reads the names and a few shapes of the tensors (never the weights)
and says what the file is: a Stable Diffusion 1.x, 2.x or SDXL base checkpoint, in the
original (LDM, non-diffusers) key layout, an inpainting UNet noted as such. Anything else
is refused by name (a LoRA, a VAE, an SDXL refiner, SD3, Flux, a ControlNet, an
embedding, a UNet alone), so registration can answer a 400 that says what the file was.

`load_single_file` gives diffusers the configs it would fetch from the hub: each family's
ship with the project (configs/<family>/, the real models' config.json files, checked
by their parameter counts in test_single_file.py) and CLIP's tokenizer is built from
open-clip-torch's BPE file (clip_tokenizer.py); nothing is downloaded. A model built
here at its own, non-standard shapes (the demo model, the tiny SDXL of the tests) carries
its configs and tokenizer in the file's safetensors metadata (CONFIG_KEY), which win over
the family's.

`write_original_checkpoint` writes a diffusers pipeline as such a single file, in the
original key layout (the reverse of diffusers' conversion), for the tests and for
exporting a model to other tools.

No Django here.
"""

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clip_tokenizer import END, write_clip_tokenizer

CONFIGS = Path(__file__).parent / "configs"
CONFIG_KEY = "imagineer.diffusers"  # the safetensors metadata of a file carrying its configs
UNET, VAE = "model.diffusion_model.", "first_stage_model."
CLIP_SD1 = "cond_stage_model.transformer."
CLIP_SDXL, OPENCLIP_SDXL = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."
FAMILY_NAMES = {"sd15": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x",
                "sdxl": "Stable Diffusion XL"}
PIPELINES = {"sd15": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline",
             "sdxl": "StableDiffusionXLPipeline"}
# OpenCLIP's tokenizers (SD 2.x, SDXL's second) pad with "!"; OpenAI's with the end token.
TOKENIZER_PADDING = {("sd15", "tokenizer"): END, ("sd2", "tokenizer"): "!",
                     ("sdxl", "tokenizer"): END, ("sdxl", "tokenizer_2"): "!"}


class NotACheckpoint(ValueError):
    """A file that is not a base checkpoint we load; the message says what it is."""


@dataclass(frozen=True)
class Checkpoint:
    family: str  # sd15, sd2, sdxl
    inpainting: bool = False
    own_config: bool = False  # carries its configs (CONFIG_KEY)
    latent_channels: int = 4  # of its VAE (first_stage_model.decoder.conv_in)

    @property
    def description(self) -> str:
        return FAMILY_NAMES[self.family] + (" inpainting" if self.inpainting else "")


def read_header(path: str | Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """({tensor name: shape}, metadata) of a safetensors file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
            return shapes, dict(handle.metadata() or {})
    except Exception as exc:  # noqa: BLE001  safetensors raises its own error types
        raise NotACheckpoint(f"{Path(path).name} is not a safetensors file ({exc}). Pickled "
                             ".ckpt files can run code when loaded: convert them to "
                             ".safetensors first.") from exc


def inspect_checkpoint(path: str | Path) -> Checkpoint:
    """What the single file at `path` is; NotACheckpoint names anything we do not load."""
    shapes, metadata = read_header(path)
    name = Path(path).name

    def has(prefix: str) -> bool:
        return any(key.startswith(prefix) for key in shapes)

    refused = _other_kind(shapes, has)
    if refused:
        raise NotACheckpoint(f"{name} is {refused}, not a Stable Diffusion base checkpoint.")
    if (has(VAE) or "decoder.conv_in.weight" in shapes) and not has(UNET):
        raise NotACheckpoint(f"{name} is a VAE alone, not a base checkpoint (register it as "
                             "a VAE, kind vae).")
    if not has(UNET):
        raise NotACheckpoint(f"{name} is not a Stable Diffusion checkpoint: it has no UNet "
                             "in the original layout (model.diffusion_model.*).")
    if has("conditioner.embedders.0.model."):
        raise NotACheckpoint(f"{name} is an SDXL refiner, which is not supported: register "
                             "an SDXL base checkpoint.")
    if has("conditioner.embedders.1.model.") and has("conditioner.embedders.0.transformer."):
        family = "sdxl"
    elif has("cond_stage_model.model."):
        family = "sd2"
    elif has(CLIP_SD1):
        family = "sd15"
    else:
        raise NotACheckpoint(f"{name} has a UNet but no text encoder of a family we know "
                             "(SD 1.x, SD 2.x, SDXL).")
    conv_in = shapes.get(UNET + "input_blocks.0.0.weight", [0, 4])
    decoder_in = shapes.get(VAE + "decoder.conv_in.weight", [0, 4])
    return Checkpoint(family=family, inpainting=len(conv_in) > 1 and conv_in[1] == 9,
                      own_config=CONFIG_KEY in metadata,
                      latent_channels=int(decoder_in[1]) if len(decoder_in) > 1 else 4)


def _other_kind(shapes: dict[str, list[int]], has: Any) -> str | None:
    keys = list(shapes)
    if any(key.startswith(("lora_unet_", "lora_te")) or ".lora_down." in key
           or ".lora_A." in key or ".lora." in key for key in keys):
        return "a LoRA (register it as a LoRA)"
    if has("model.diffusion_model.joint_blocks.") or has("joint_blocks."):
        return "a Stable Diffusion 3 model, which is not supported"
    if has("double_blocks.") or has("model.diffusion_model.double_blocks."):
        return "a Flux model, which is not supported"
    if has("control_model.") or has("controlnet_cond_embedding."):
        return "a ControlNet, which is not supported"
    if any(key in shapes for key in ("string_to_param.*", "emb_params", "clip_l", "clip_g")):
        return "a textual-inversion embedding, which is not supported"
    if has("down_blocks.") and has("conv_in.") and not has(UNET):
        return "a diffusers UNet alone (register the whole diffusers folder instead)"
    return None


# -- loading ---------------------------------------------------------------------------

def folder_pipeline_class(source: str | Path) -> str:
    """The pipeline class a diffusers folder, or a hub id, names in its model_index.json
    (PIPELINES: SD 1.x/2.x or SDXL). ValueError for another; StableDiffusionPipeline when
    there is no model_index.json to read (the pipeline's own loading then says why)."""
    index = Path(str(source)) / "model_index.json"
    if not Path(str(source)).is_dir():
        index = _hub_model_index(str(source)) or index
    if not index.is_file():
        return "StableDiffusionPipeline"
    name = json.loads(index.read_text()).get("_class_name", "StableDiffusionPipeline")
    if name not in PIPELINES.values():
        raise ValueError(f"{Path(str(source)).name} holds a {name}, not one of "
                         f"{', '.join(sorted(set(PIPELINES.values())))}.")
    return str(name)


def _hub_model_index(repo_id: str) -> Path | None:
    """The model_index.json of a hub id, through huggingface_hub (its cache first, and
    offline with HF_HUB_OFFLINE), or None when it cannot be had: an SDXL id must load
    with the SDXL pipeline class, as a folder does."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, "model_index.json"))
    except Exception:  # noqa: BLE001  not a hub id, offline and not cached, no such repo
        return None


def native_size(source: str | Path) -> int | None:
    """The side, in pixels, a base's UNet draws at (its config's sample_size times the VAE's
    scale), from a diffusers folder or from the configs a single file carries; None where
    only the family's shipped configs say it (a plain single file, a hub id)."""
    path = Path(str(source))
    configs: dict[str, Any] = {}
    if path.is_dir():
        for name in ("unet", "vae"):
            file = path / name / "config.json"
            if file.is_file():
                configs[name] = json.loads(file.read_text())
    elif path.is_file():
        _, metadata = read_header(path)
        if CONFIG_KEY in metadata:
            carried = json.loads(metadata[CONFIG_KEY])
            configs = {name: json.loads(carried[name]["config.json"]) for name in ("unet", "vae")
                       if "config.json" in carried.get(name, {})}
    if "unet" not in configs or "vae" not in configs:
        return None
    sample = configs["unet"].get("sample_size")
    blocks = len(configs["vae"].get("block_out_channels", [])) or 4
    return int(sample) * 2 ** (blocks - 1) if isinstance(sample, int) else None


def config_folder(path: str | Path, info: Checkpoint, folder: Path) -> Path:
    """Write the diffusers config folder for the checkpoint at `path` into `folder`: the
    family's shipped configs and CLIP tokenizers, or the file's own (CONFIG_KEY)."""
    if info.own_config:
        _, metadata = read_header(path)
        carried = json.loads(metadata[CONFIG_KEY])
        for name, files in carried.items():
            for file_name, text in files.items():
                (folder / name).mkdir(parents=True, exist_ok=True)
                (folder / name / file_name).write_text(text, encoding="utf-8")
        return folder
    shutil.copytree(CONFIGS / info.family, folder, dirs_exist_ok=True)
    if info.inpainting:
        unet_config = folder / "unet" / "config.json"
        unet_config.write_text(json.dumps({**json.loads(unet_config.read_text()),
                                           "in_channels": 9}))
    index = json.loads((folder / "model_index.json").read_text())
    for name in ("tokenizer", "tokenizer_2"):
        if name in index:
            write_clip_tokenizer(folder / name, pad_token=TOKENIZER_PADDING[info.family, name])
    return folder


def load_single_file(path: str | Path, info: Checkpoint, options: dict[str, Any]) -> Any:
    """The diffusers pipeline of a single-file checkpoint, loaded with no network."""
    import diffusers

    pipeline_class = getattr(diffusers, PIPELINES[info.family])
    if info.family != "sdxl":
        options = {**options, "safety_checker": None, "requires_safety_checker": False}
    with tempfile.TemporaryDirectory(prefix="imagineer-config-") as folder:
        config = config_folder(path, info, Path(folder))
        return pipeline_class.from_single_file(str(path), config=str(config),
                                               local_files_only=True, **options)


# -- writing the original layout -------------------------------------------------------

RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
          ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
          ("conv_shortcut", "skip_connection")]
VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                 ("to_out.0", "proj_out")]


def unet_to_original(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers UNet2DConditionModel's state dict in the original layout (no prefix)."""
    per = config["layers_per_block"] + 1
    up_with_attention = ["CrossAttn" in kind for kind in config["up_block_types"]]
    renames = [(r"^conv_in\.", "input_blocks.0.0."), (r"^conv_norm_out\.", "out.0."),
               (r"^conv_out\.", "out.2."), (r"^time_embedding\.linear_1\.", "time_embed.0."),
               (r"^time_embedding\.linear_2\.", "time_embed.2."),
               (r"^add_embedding\.linear_1\.", "label_emb.0.0."),
               (r"^add_embedding\.linear_2\.", "label_emb.0.2."),
               (r"^mid_block\.resnets\.0\.", "middle_block.0."),
               (r"^mid_block\.attentions\.0\.", "middle_block.1."),
               (r"^mid_block\.resnets\.1\.", "middle_block.2.")]

    def rename(key: str) -> str:
        for pattern, replacement in renames:
            if re.match(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        else:
            key = _unet_block(key, per, up_with_attention)
        if re.match(r"^(input_blocks|output_blocks|middle_block)\.\d+\.[02]\.", key) or \
                re.match(r"^middle_block\.[02]\.", key):
            for diffusers_name, original in RESNET:
                key = re.sub(rf"(^\w+\.\d+\.(?:\d+\.)?){diffusers_name}\.", rf"\g<1>{original}.",
                             key)
        return key

    return {rename(key): value for key, value in state.items()}


def _unet_block(key: str, per: int, up_with_attention: list[bool]) -> str:
    for blocks, original, first in (("down_blocks", "input_blocks", 1),
                                    ("up_blocks", "output_blocks", 0)):
        match = re.match(rf"^{blocks}\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key)
        if match:
            slot = 0 if match[2] == "resnets" else 1
            return f"{original}.{first + int(match[1]) * per + int(match[3])}.{slot}.{match[4]}"
    match = re.match(r"^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key)
    if match:
        return f"input_blocks.{(int(match[1]) + 1) * per}.0.op.{match[2]}"
    match = re.match(r"^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key)
    if match:
        block = int(match[1])
        slot = 2 if up_with_attention[block] else 1
        return f"output_blocks.{block * per + per - 1}.{slot}.conv.{match[2]}"
    return key


def vae_to_original(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers AutoencoderKL's state dict in the original layout (no prefix)."""
    blocks = len(config["block_out_channels"])
    out = {}
    for key, value in state.items():
        original = key
        original = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.",
                          original)
        original = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.",
                          r"encoder.down.\1.downsample.", original)
        match = re.match(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.(.*)", original)
        if match:
            level = blocks - 1 - int(match[1])
            part = "block." if match[2] == "resnets" else "upsample."
            original = f"decoder.up.{level}.{part}{match[3]}"
        original = re.sub(r"\.mid_block\.resnets\.(\d)\.",
                          lambda m: f".mid.block_{int(m[1]) + 1}.", original)
        original = original.replace(".mid_block.attentions.0.", ".mid.attn_1.")
        original = original.replace(".conv_norm_out.", ".norm_out.").replace(
            ".conv_shortcut.", ".nin_shortcut.")
        if ".mid.attn_1." in original:
            for diffusers_name, name in VAE_ATTENTION:
                original = original.replace(f".attn_1.{diffusers_name}.", f".attn_1.{name}.")
            if original.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")) \
                    and value.ndim == 2:
                value = value[:, :, None, None]  # a 1x1 convolution in the original
        out[original] = value
    return out


def openclip_to_original(state: dict[str, Any]) -> dict[str, Any]:
    """A transformers CLIPTextModelWithProjection's state dict in OpenCLIP's layout (SDXL's
    second text encoder, no prefix): q, k and v in one in_proj, the projection transposed."""
    import torch

    state = {key.removeprefix("text_model."): value for key, value in state.items()
             if not key.endswith("position_ids")}
    out = {"token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
           "positional_embedding": state.pop("embeddings.position_embedding.weight"),
           "text_projection": state.pop("text_projection.weight").T.contiguous()}
    for key in [key for key in state if ".self_attn.q_proj." in key]:
        layer, kind = key.split(".")[2], key.rsplit(".", 1)[1]  # encoder.layers.<n>...<kind>
        parts = [state.pop(f"encoder.layers.{layer}.self_attn.{name}_proj.{kind}")
                 for name in "qkv"]
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat(parts)
    for key, value in state.items():
        original = key.replace("final_layer_norm.", "ln_final.")
        original = original.replace("encoder.layers.", "transformer.resblocks.")
        for diffusers_name, name in (("self_attn.", "attn."), ("layer_norm1", "ln_1"),
                                     ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                                     ("mlp.fc2", "mlp.c_proj")):
            original = original.replace(diffusers_name, name)
        out[original] = value
    return out


def write_original_checkpoint(pipeline: Any, path: str | Path, *,
                              carry_config: bool = False) -> Path:
    """Write an SD 1.x-layout pipeline (UNet, VAE, CLIP text encoder) or an SDXL one (and
    OpenCLIP's second text encoder) as one safetensors file in the original key layout.
    carry_config: put its configs and tokenizers in the file (CONFIG_KEY), for a model at
    shapes of its own (the demo model, the tiny SDXL)."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    unet_config = dict(pipeline.unet.config)
    for key, value in unet_to_original(pipeline.unet.state_dict(), unet_config).items():
        tensors[UNET + key] = value
    for key, value in vae_to_original(pipeline.vae.state_dict(), dict(pipeline.vae.config)).items():
        tensors[VAE + key] = value
    text_encoder_2 = getattr(pipeline, "text_encoder_2", None)
    first = CLIP_SD1 if text_encoder_2 is None else CLIP_SDXL
    for key, value in pipeline.text_encoder.state_dict().items():
        # transformers 5.6+ flattened CLIPTextModel; the original layout keeps "text_model."
        tensors[first + ("" if key.startswith("text_model.") else "text_model.") + key] = value
    if text_encoder_2 is not None:
        for key, value in openclip_to_original(text_encoder_2.state_dict()).items():
            tensors[OPENCLIP_SDXL + key] = value
    metadata = {CONFIG_KEY: json.dumps(carried_config(pipeline))} if carry_config else None
    path = Path(path)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path),
              metadata=metadata)
    return path


def carried_config(pipeline: Any) -> dict[str, dict[str, str]]:
    """The diffusers configs and tokenizer files of `pipeline`, as CONFIG_KEY holds them:
    {subfolder ("." for model_index.json): {file name: text}}."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        pipeline.save_config(folder)
        for component_name in ("unet", "vae", "scheduler"):
            getattr(pipeline, component_name).save_config(folder / component_name)
        for component_name in ("text_encoder", "text_encoder_2"):
            component = getattr(pipeline, component_name, None)
            if component is not None:
                (folder / component_name).mkdir()
                component.config.to_json_file(str(folder / component_name / "config.json"))
        for component_name in ("tokenizer", "tokenizer_2"):
            tokenizer = getattr(pipeline, component_name, None)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder / component_name)
        grouped: dict[str, dict[str, str]] = {}
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                grouped.setdefault(str(file.parent.relative_to(folder)), {})[file.name] = \
                    file.read_text(encoding="utf-8")
        return grouped
