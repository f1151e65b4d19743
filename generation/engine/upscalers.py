"""Upscaler models of the ESRGAN family, loaded with torch alone.

    info = inspect_upscaler(path)        # arch, scale, channels, blocks; or NotAnUpscaler
    model = load_upscaler(path, device)  # an Upscaler: model(picture, (width, height))

Two architectures cover the ESRGAN family that A1111, ComfyUI and InvokeAI users have:

- RRDBNet (ESRGAN, BSRGAN, Real-ESRGAN x4plus, 4x-UltraSharp and the community models),
  in its three key layouts: the original ESRGAN "old arch" (`model.0.weight`,
  `model.1.sub.N.RDBk.convj.0.weight`, the upsampling convs at `model.3`, `model.6`...),
  the ESRGAN "new arch" (`conv_first`, `RRDB_trunk`, `trunk_conv`, `upconvN`, `HRconv`)
  and BasicSR's, which Real-ESRGAN uses (`conv_first`, `body`, `conv_body`,
  `conv_upN`, `conv_hr`), including Real-ESRGAN's x2 and x1 models, which take the
  picture pixel-unshuffled (their first conv has 4 or 16 times the picture's channels);
- SRVGGNetCompact (Real-ESRGAN's realesr-general-x4v3, realesr-animevideov3:
  `body.N.weight`, PReLU activations, a pixel shuffle and a nearest-neighbour base).

The architecture, the scale, the channel counts and the number of blocks are read from
the keys and shapes of the weights (`inspect_upscaler`), never from the file's name. A
`.safetensors` file is read as such; anything else is read with
`torch.load(weights_only=True)` (a `.pth`: no pickled code runs), unwrapping BasicSR's
`params_ema` / `params`. A file that is none of these gets `NotAnUpscaler`, whose
message names the file and what was expected (registration answers it as a 400).

An upscaler brings a picture to a size by running the model while the picture is
smaller than the size (at most MAX_PASSES times; a 1x model once), then resampling to
the exact size with Lanczos (what A1111 does).

Why not spandrel, which the issue named: `import spandrel` (0.4.2) imports torchvision
(its LaMa and RestoreFormer archs import torchvision.transforms.functional), and the only
torchvision on our package index for the pinned torch 2.13.0 is 0.28.0, a CUDA build
whose import fails on the CPU torch ("RuntimeError: operator torchvision::nms does not
exist"); torchvision 0.29 needs torch >= 2.14, which would pull a multi-GB CUDA torch.
These two architectures are a few dozen lines of torch. Once a CPU torchvision exists
for the pinned torch, spandrel can replace this module (and bring its other archs:
SwinIR, HAT, DAT, OmniSR...): `load_upscaler` is the one place that would change.

No Django here.
"""

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How many times a model may run to reach a size (a 4x model twice: 16x).
MAX_PASSES = 4
RRDB, COMPACT = "RRDBNet", "SRVGGNetCompact"
ARCH_NAMES = {RRDB: "RRDBNet (ESRGAN)", COMPACT: "SRVGGNetCompact (Real-ESRGAN compact)"}
EXPECTED = ("an ESRGAN-family upscaler (.pth or .safetensors weights of an RRDBNet: ESRGAN, "
            "Real-ESRGAN, BSRGAN, or of an SRVGGNetCompact: realesr-general-x4v3)")


class NotAnUpscaler(ValueError):
    """A file that is not an upscaler we load; the message names it and says why."""


@dataclass(frozen=True)
class UpscalerInfo:
    """What an upscaler file holds, read from its keys and shapes."""

    arch: str  # RRDB or COMPACT
    scale: int  # the output's size over the input's
    in_channels: int  # of the picture (3 for RGB)
    out_channels: int
    features: int  # channels inside the network
    blocks: int  # RRDB blocks, or SRVGGNetCompact convs between the first and the last
    grow: int = 0  # RRDB: the dense blocks' growth channels
    unshuffle: int = 1  # Real-ESRGAN x2/x1: the picture is pixel-unshuffled by this

    @property
    def description(self) -> str:
        blocks = f"{self.blocks} block" + ("" if self.blocks == 1 else "s")
        return f"a {self.scale}x {ARCH_NAMES[self.arch]} upscaler ({blocks}, " \
               f"{self.features} features)"


# -- reading a file ------------------------------------------------------------------------


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensors of an upscaler file: safetensors by its header, else torch.load with
    weights_only (no pickled code runs), unwrapping BasicSR's params_ema / params."""
    path = Path(path)
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            import torch

            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except NotAnUpscaler:
        raise
    except Exception as exc:  # a truncated file, a pickle of code, not a tensor file at all
        raise NotAnUpscaler(f"{path.name} could not be read as .pth or .safetensors weights "
                            f"({type(exc).__name__}); expected {EXPECTED}.") from exc
    if isinstance(state, Mapping):
        for wrapper in ("params_ema", "params", "state_dict"):
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
                break
    import torch

    if not isinstance(state, Mapping) or not state or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor)
            for key, value in state.items()):
        raise NotAnUpscaler(f"{path.name} holds no state dict of tensors; expected "
                            f"{EXPECTED}.")
    return dict(state)


def _is_safetensors(path: Path) -> bool:
    """Whether the file starts as a safetensors file: an 8-byte header length, then JSON."""
    with open(path, "rb") as file:
        head = file.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 0 < length <= path.stat().st_size - 8


def inspect_upscaler(path: str | Path) -> UpscalerInfo:
    """What the file is (arch, scale, channels, blocks), or NotAnUpscaler naming it."""
    path = Path(path)
    return detect(read_state_dict(path), path.name)


def detect(state: Mapping[str, Any], name: str = "the file") -> UpscalerInfo:
    """The architecture and sizes of a state dict, read from its keys and shapes."""
    try:
        if "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state:
            return _rrdb_info(to_basicsr_keys(state))
        if "conv_first.weight" in state and ("RRDB_trunk.0.RDB1.conv1.weight" in state
                                             or "body.0.rdb1.conv1.weight" in state):
            return _rrdb_info(to_basicsr_keys(state))
        if "body.0.weight" in state and "body.1.weight" in state:
            return _compact_info(state)
    except (KeyError, IndexError, ValueError) as exc:
        raise NotAnUpscaler(f"{name} looks like an ESRGAN-family upscaler but its weights "
                            f"are incomplete or of unexpected shapes ({exc}).") from exc
    what = None
    if any("lora" in key.lower() for key in state):
        what = "a LoRA"
    elif any(key.startswith(("model.diffusion_model.", "first_stage_model.", "unet.",
                             "conditioner.")) for key in state):
        what = "a Stable Diffusion model"
    if what:
        raise NotAnUpscaler(f"{name} is {what}, not an upscaler; expected {EXPECTED}.")
    raise NotAnUpscaler(f"{name} is not an upscaler we can load (its keys match neither "
                        f"RRDBNet nor SRVGGNetCompact); expected {EXPECTED}.")


def to_basicsr_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """An RRDBNet state dict in BasicSR's key layout, from any of the three."""
    if "body.0.rdb1.conv1.weight" in state:
        return dict(state)
    if "model.0.weight" in state:  # the original ESRGAN: one Sequential, indices
        blocks = _count("model.1.sub.{}.RDB1.conv1.0.weight", state)
        tail = sorted({int(match.group(1)) for key in state
                       if (match := re.fullmatch(r"model\.(\d+)\.weight", key))} - {0})
        if len(tail) < 2:
            raise ValueError("no final convs (model.N.weight after model.1)")
        names = {f"model.{index}": f"conv_up{number}"
                 for number, index in enumerate(tail[:-2], start=1)}
        names.update({f"model.{tail[-2]}": "conv_hr", f"model.{tail[-1]}": "conv_last",
                      "model.0": "conv_first", f"model.1.sub.{blocks}": "conv_body"})
        return _renamed(state, names, r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0")
    # The ESRGAN new arch.
    names = {"trunk_conv": "conv_body", "HRconv": "conv_hr", "conv_first": "conv_first",
             "conv_last": "conv_last"}
    names.update({f"upconv{number}": f"conv_up{number}"
                  for number in range(1, _count("upconv{}.weight", state, start=1) + 1)})
    return _renamed(state, names, r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)")


def _renamed(state: Mapping[str, Any], names: dict[str, str], dense: str) -> dict[str, Any]:
    """The state dict with its modules renamed by `names`, and the dense blocks' convs
    matched by `dense` (groups: block, dense block, conv) named as BasicSR's."""
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module in names:
            renamed[f"{names[module]}.{leaf}"] = value
        elif match := re.fullmatch(dense, module):
            block, rdb, conv = match.groups()
            renamed[f"body.{block}.rdb{rdb}.conv{conv}.{leaf}"] = value
        else:
            raise ValueError(f"unexpected key {key}")
    return renamed


def _count(pattern: str, state: Mapping[str, Any], start: int = 0) -> int:
    """How many of pattern.format(start), pattern.format(start + 1)... are keys."""
    count = 0
    while pattern.format(start + count) in state:
        count += 1
    return count


def _rrdb_info(state: Mapping[str, Any]) -> UpscalerInfo:
    first, last = state["conv_first.weight"], state["conv_last.weight"]
    out_channels = int(last.shape[0])
    first_in = int(first.shape[1])
    unshuffle = math.isqrt(first_in // out_channels) if first_in % out_channels == 0 else 0
    if unshuffle < 1 or unshuffle * unshuffle * out_channels != first_in:
        raise ValueError(f"conv_first takes {first_in} channels, conv_last gives "
                         f"{out_channels}")
    ups = _count("conv_up{}.weight", state, start=1)
    scale = 2 ** ups
    if scale % unshuffle:
        raise ValueError(f"{ups} upsampling convs with a pixel unshuffle of {unshuffle}")
    return UpscalerInfo(
        arch=RRDB, scale=scale // unshuffle, in_channels=first_in // unshuffle ** 2,
        out_channels=out_channels, features=int(first.shape[0]),
        blocks=_count("body.{}.rdb1.conv1.weight", state),
        grow=int(state["body.0.rdb1.conv1.weight"].shape[0]), unshuffle=unshuffle)


def _compact_info(state: Mapping[str, Any]) -> UpscalerInfo:
    convs = sorted(int(match.group(1)) for key, value in state.items()
                   if (match := re.fullmatch(r"body\.(\d+)\.weight", key)) and value.ndim == 4)
    prelus = sorted(int(match.group(1)) for key, value in state.items()
                    if (match := re.fullmatch(r"body\.(\d+)\.weight", key)) and value.ndim == 1)
    if convs != list(range(0, 2 * len(convs), 2)) or prelus != list(range(1, 2 * len(convs) - 2,
                                                                          2)):
        raise ValueError("body.N: expected convs at even N with a PReLU after each but the "
                         "last")
    first, last = state["body.0.weight"], state[f"body.{convs[-1]}.weight"]
    in_channels, features = int(first.shape[1]), int(first.shape[0])
    out_total = int(last.shape[0])
    scale = math.isqrt(out_total // in_channels)
    if scale < 1 or scale * scale * in_channels != out_total:
        raise ValueError(f"the last conv gives {out_total} channels for {in_channels} in")
    return UpscalerInfo(arch=COMPACT, scale=scale, in_channels=in_channels,
                        out_channels=in_channels, features=features, blocks=len(convs) - 2)


# -- the networks ----------------------------------------------------------------------------


def build(info: UpscalerInfo) -> Any:
    """An untrained network of `info`'s architecture and sizes (torch.nn.Module)."""
    import torch
    from torch import nn
    from torch.nn import functional

    def lrelu(tensor: Any) -> Any:
        return functional.leaky_relu(tensor, 0.2)

    class DenseBlock(nn.Module):
        conv5: nn.Conv2d  # conv1 to conv5 are set by name (the weights' keys)

        def __init__(self, features: int, grow: int) -> None:
            super().__init__()
            for index in range(1, 6):
                setattr(self, f"conv{index}", nn.Conv2d(features + (index - 1) * grow,
                                                        features if index == 5 else grow,
                                                        3, 1, 1))

        def forward(self, x: Any) -> Any:
            found = [x]
            for index in range(1, 5):
                found.append(lrelu(getattr(self, f"conv{index}")(torch.cat(found, 1))))
            return self.conv5(torch.cat(found, 1)) * 0.2 + x

    class RRDBlock(nn.Module):
        def __init__(self, features: int, grow: int) -> None:
            super().__init__()
            self.rdb1 = DenseBlock(features, grow)
            self.rdb2 = DenseBlock(features, grow)
            self.rdb3 = DenseBlock(features, grow)

        def forward(self, x: Any) -> Any:
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self, info: UpscalerInfo) -> None:
            super().__init__()
            features, self.unshuffle = info.features, info.unshuffle
            self.conv_first = nn.Conv2d(info.in_channels * info.unshuffle ** 2, features,
                                        3, 1, 1)
            self.body = nn.Sequential(*(RRDBlock(features, info.grow)
                                        for _ in range(info.blocks)))
            self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
            self.ups = int(math.log2(info.scale * info.unshuffle))
            for index in range(1, self.ups + 1):
                setattr(self, f"conv_up{index}", nn.Conv2d(features, features, 3, 1, 1))
            self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
            self.conv_last = nn.Conv2d(features, info.out_channels, 3, 1, 1)

        def forward(self, x: Any) -> Any:
            if self.unshuffle > 1:
                x = functional.pixel_unshuffle(x, self.unshuffle)
            feature = self.conv_first(x)
            feature = feature + self.conv_body(self.body(feature))
            for index in range(1, self.ups + 1):
                feature = lrelu(getattr(self, f"conv_up{index}")(
                    functional.interpolate(feature, scale_factor=2, mode="nearest")))
            return self.conv_last(lrelu(self.conv_hr(feature)))

    class SRVGGNetCompact(nn.Module):
        def __init__(self, info: UpscalerInfo) -> None:
            super().__init__()
            self.scale = info.scale
            layers: list[nn.Module] = [nn.Conv2d(info.in_channels, info.features, 3, 1, 1),
                                       nn.PReLU(info.features)]
            for _ in range(info.blocks):
                layers += [nn.Conv2d(info.features, info.features, 3, 1, 1),
                           nn.PReLU(info.features)]
            layers.append(nn.Conv2d(info.features, info.out_channels * info.scale ** 2,
                                    3, 1, 1))
            self.body = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            out = functional.pixel_shuffle(self.body(x), self.scale)
            return out + functional.interpolate(x, scale_factor=self.scale, mode="nearest")

    return RRDBNet(info) if info.arch == RRDB else SRVGGNetCompact(info)


def load_module(path: str | Path) -> tuple[UpscalerInfo, Any]:
    """The file's network with its weights, on the CPU in eval mode, and its info."""
    path = Path(path)
    state = read_state_dict(path)
    info = detect(state, path.name)
    if info.arch == RRDB:
        state = to_basicsr_keys(state)
    module = build(info)
    try:
        module.load_state_dict({key: value.float() for key, value in state.items()})
    except RuntimeError as exc:
        raise NotAnUpscaler(f"{path.name}: its weights do not fit the {info.description} "
                            f"their keys describe ({str(exc).splitlines()[0]}).") from exc
    return info, module.eval()


# -- running one ---------------------------------------------------------------------------


class ModelUpscaler:
    """A loaded upscaler: `upscaler(picture, (width, height))` -> the picture at that size
    (an engine Upscaler, as pipelines.lanczos is)."""

    def __init__(self, path: str | Path, device: Any = "cpu") -> None:
        import torch

        self.path = str(path)
        self.info, module = load_module(path)
        self.device = torch.device(device)
        self.module = module.to(self.device)

    def run(self, picture: Any) -> Any:
        """One pass of the network: the picture at `scale` times its size (RGB)."""
        import numpy as np
        import torch
        from PIL import Image

        rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).to(self.device)
        height, width = tensor.shape[2:]
        multiple = self.info.unshuffle
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:  # pixel unshuffle needs sides divisible by its factor
            tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode="reflect")
        with torch.inference_mode():
            out = self.module(tensor)
        scale = self.info.scale
        out = out[:, :, :height * scale, :width * scale].clamp(0, 1)
        array = (out[0].permute(1, 2, 0).float().cpu().numpy() * 255.0).round()
        return Image.fromarray(array.astype(np.uint8), mode="RGB")

    def __call__(self, picture: Any, size: tuple[int, int]) -> Any:
        from PIL import Image

        picture = picture.convert("RGB")
        for _ in range(MAX_PASSES):
            if picture.width >= size[0] and picture.height >= size[1]:
                break
            picture = self.run(picture)
            if self.info.scale == 1:
                break
        if picture.size != tuple(size):
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        return picture


def load_upscaler(path: str | Path, device: Any = "cpu") -> ModelUpscaler:
    """The upscaler of a file, loaded on `device` (NotAnUpscaler for another file)."""
    return ModelUpscaler(path, device)


def random_state_dict(info: UpscalerInfo, layout: str = "basicsr", seed: int = 0) -> dict:
    """A random network of `info` as a state dict in `layout` ("basicsr", "old": the
    original ESRGAN's, "new": ESRGAN's new arch; SRVGGNetCompact has one), for the tests:
    weights small enough that the output is not saturated."""
    import torch

    torch.manual_seed(seed)
    module = build(info)
    state = {key: value.detach().clone() * 0.5 for key, value in module.state_dict().items()}
    if info.arch == COMPACT or layout == "basicsr":
        return state
    if layout == "new":
        names = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
        return {_rename_new(key, names): value for key, value in state.items()}
    if layout != "old":
        raise ValueError(f"layout: basicsr, old or new, not {layout!r}")
    ups = int(math.log2(info.scale))
    tail = {f"conv_up{number}": 3 * number for number in range(1, ups + 1)}
    hr = 3 * ups + 2
    tail.update({"conv_hr": hr, "conv_last": hr + 2, "conv_first": 0})
    old: dict[str, Any] = {}
    for key, value in state.items():
        module_name, _, leaf = key.rpartition(".")
        if module_name == "conv_body":
            old[f"model.1.sub.{info.blocks}.{leaf}"] = value
        elif module_name in tail:
            old[f"model.{tail[module_name]}.{leaf}"] = value
        else:
            block, dense, conv = re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)",
                                              module_name).groups()  # type: ignore[union-attr]
            old[f"model.1.sub.{block}.RDB{dense}.conv{conv}.0.{leaf}"] = value
    return old


def _rename_new(key: str, names: dict[str, str]) -> str:
    module, _, leaf = key.rpartition(".")
    if module in names:
        return f"{names[module]}.{leaf}"
    if match := re.fullmatch(r"conv_up(\d+)", module):
        return f"upconv{match.group(1)}.{leaf}"
    if match := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", module):
        return "RRDB_trunk.{}.RDB{}.conv{}.{}".format(*match.groups(), leaf)
    return key

