"""How a picture made elsewhere was made: the generation metadata other tools write.

    prompt, params = read_generation_metadata(data, width=512, height=768)

Teams arrive with galleries made in Automatic1111 (and Forge, SD.Next: the `parameters`
text), ComfyUI (its `prompt` and `workflow` graphs), InvokeAI (`invokeai_metadata`,
`sd-metadata`, `Dream`), Fooocus (its JSON `parameters`) or NovelAI. The `sd-parsers`
package reads all of them; this module turns what it finds into the prompt and the
`params` an Image keeps (albums/ingest.py calls it for uploads and imports), in the
same keys the platform's own images use where there is one:

    generator        the tool ("AUTOMATIC1111", "ComfyUI", "InvokeAI", "Fooocus", ...)
    negative_prompt, steps, guidance_scale, seed, width, height, clip_skip
    sampler          the tool's own name for it ("Euler a", "dpmpp_2m", ...), as written
    schedule         the noise schedule the tool names apart ("karras"), if any
    model, model_hash   the checkpoint's name and hash (A1111's short sha256) as written

Mapping the sampler to a scheduler of ours and the model to a registered one is the
generation app's (generation/remix.py): albums does not know the models.

What another tool wrote is untrusted text: it is read only (never evaluated), numbers
must be numbers in their range or are left out, text is cut to a bounded length, and a
picture whose metadata cannot be read is stored all the same, without it.
"""

import io
import logging
import re

from PIL import Image as PILImage

logger = logging.getLogger(__name__)

PROMPT_MAX = 10_000  # characters kept of a prompt (tools allow long, weighted prompts)
TEXT_MAX = 200  # characters kept of a name, a hash, a sampler
NUMBERS = {  # what a number must be to be kept: kind and range
    "steps": (int, 1, 10_000),
    "guidance_scale": (float, 0.0, 100.0),
    "seed": (int, 0, 2**64 - 1),
    "width": (int, 1, 65_536),
    "height": (int, 1, 65_536),
    "clip_skip": (int, 1, 24),
}


def read_generation_metadata(data, *, width=None, height=None):
    """(prompt, params) read from the image bytes, or ("", {}) when they hold no
    generation metadata that sd-parsers knows. `width`, `height`: the picture's own size,
    the generation size when the tool did not write one."""
    from sd_parsers import ParserManager

    try:
        with PILImage.open(io.BytesIO(data)) as image:
            info = ParserManager().parse(image)
        if info is None or not info.samplers:
            return "", {}
        return _normalised(info, width, height)
    except Exception:  # noqa: BLE001  a tool's malformed metadata must not refuse a picture
        logger.info("unreadable generation metadata; the picture is stored without it",
                    exc_info=True)
        return "", {}


def _normalised(info, width, height):
    sampler = info.samplers[0]
    parameters = dict(sampler.parameters)
    extra = dict(info.metadata) if isinstance(info.metadata, dict) else {}
    raw = {}
    generator = getattr(info.generator, "value", str(info.generator))
    raw["generator"] = generator
    raw["negative_prompt"] = info.full_negative_prompt
    raw["sampler"] = sampler.name
    raw["schedule"] = parameters.get("scheduler")
    raw["steps"] = parameters.get("steps")
    raw["guidance_scale"] = parameters.get("cfg_scale")
    raw["seed"] = parameters.get("seed")
    if sampler.model is not None:
        raw["model"] = sampler.model.name
        raw["model_hash"] = sampler.model.hash
    size = _size(generator, extra)
    raw["width"], raw["height"] = size or (width, height)
    raw["clip_skip"] = _clip_skip(generator, extra)
    prompt = _text(info.full_prompt, PROMPT_MAX)
    params = {"generator": _text(generator, TEXT_MAX)}
    for key, value in raw.items():
        if key in NUMBERS:
            value = _number(value, *NUMBERS[key])
        elif isinstance(value, str):
            value = _text(value, PROMPT_MAX if key == "negative_prompt" else TEXT_MAX)
        else:
            value = None
        if value not in (None, ""):
            params[key] = value
    return prompt, params


def _size(generator, extra):
    """(width, height) where the tool writes it: A1111 "Size: 512x768", Fooocus
    "resolution": "(1024, 1024)", InvokeAI width and height, ComfyUI its latent's."""
    if generator == "ComfyUI":
        latents = extra.get("EmptyLatentImage") or extra.get("EmptySD3LatentImage") or []
        latent = latents[0] if isinstance(latents, list) and latents else {}
        return (latent.get("width"), latent.get("height")) if isinstance(latent, dict) \
            else None
    if "width" in extra and "height" in extra:
        return extra["width"], extra["height"]
    text = extra.get("Size") or extra.get("resolution")
    numbers = re.findall(r"\d+", str(text)) if text else []
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None


def _clip_skip(generator, extra):
    """A1111 writes "Clip skip: 2"; ComfyUI a CLIPSetLastLayer node at -2 (the same)."""
    if generator == "ComfyUI":
        for node in extra.get("CLIPSetLastLayer") or []:
            layer = _number(node.get("stop_at_clip_layer"), int, -24, -1) \
                if isinstance(node, dict) else None
            if layer is not None:
                return -layer
        return None
    return extra.get("Clip skip") or extra.get("clip_skip")


def _text(value, limit):
    return str(value).replace("\x00", "").strip()[:limit]


def _number(value, kind, low, high):
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if number != number or (kind is int and not number.is_integer()):  # NaN, or 7.5 steps
        return None
    number = kind(number)
    return number if low <= number <= high else None
