"""Generation parameters in the Automatic1111 `parameters` PNG text chunk.

A1111's PNG Info tab, Civitai and the `sd-parsers` package read this format:

    a prompt, possibly on several lines
    Negative prompt: a negative prompt
    Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: ...

Hashes are "AutoV2" short hashes, the first 10 hex digits of the file's sha256, which
A1111 writes for models and Civitai looks both models and LoRAs up by.
"""

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

SHORT_HASH_LENGTH = 10


def short_hash(sha256: str) -> str:
    return sha256[:SHORT_HASH_LENGTH]


def _quote(value: object) -> str:
    """Quote a value the way A1111 does when it would break the `key: value, ...` line."""
    value = str(value)
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def parameters_text(
    *,
    prompt: str,
    negative_prompt: str = "",
    steps: int,
    sampler: str,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model_name: str | None = None,
    model_sha256: str | None = None,
    vae_name: str | None = None,
    vae_sha256: str | None = None,
    loras: Sequence[tuple[str, str]] = (),
    extra: Sequence[tuple[str, object]] = (),
) -> str:
    """The A1111 `parameters` text for one image.

    sampler: the A1111 name (see pipelines.sampler_name). vae_name, vae_sha256: the
    base's VAE override, written after the model as A1111 writes its "SD VAE". loras:
    [(name, sha256)] of the LoRAs used; their short hashes go into `Lora hashes`. extra:
    more (name, value) fields, after the model's, as A1111 writes "Denoising strength",
    "Mask blur" and "Hires upscale" (quoted when they would break the line).
    """
    fields = [
        ("Steps", steps),
        ("Sampler", _quote(sampler)),
        ("CFG scale", f"{float(cfg_scale):g}"),
        ("Seed", seed),
        ("Size", f"{width}x{height}"),
    ]
    if model_sha256:
        fields.append(("Model hash", short_hash(model_sha256)))
    if model_name:
        fields.append(("Model", _quote(model_name)))
    if vae_sha256:
        fields.append(("VAE hash", short_hash(vae_sha256)))
    if vae_name:
        fields.append(("VAE", _quote(vae_name)))
    if loras:
        # Always quoted, as A1111 writes it: the value holds ", " and ": " itself.
        hashes = ", ".join(f"{name}: {short_hash(sha)}" for name, sha in loras)
        fields.append(("Lora hashes", json.dumps(hashes, ensure_ascii=False)))
    fields += [(key, _quote(value)) for key, value in extra]

    lines = [prompt.strip()]
    if negative_prompt and negative_prompt.strip():
        lines.append(f"Negative prompt: {negative_prompt.strip()}")
    lines.append(", ".join(f"{key}: {value}" for key, value in fields))
    return "\n".join(lines)


def png_bytes(image: "PILImage", parameters: str) -> bytes:
    """The image encoded as PNG with `parameters` in a text chunk (tEXt, or iTXt when the
    text is not Latin-1, as Pillow chooses)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
