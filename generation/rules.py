"""The rules of the generation parameters and the site settings: ranges, multiples,
choices, and the checks that need no database. One table (NUMBERS) is read by the
validator, the API's schema (openapi_rule) and the forms.

generation/validation.py applies them to a request (defaults, the model, the LoRAs); the
models import this module, never that one, so the two do not import each other.

Prompt templates (a prompt set's "the {rank} of {suit}") hold placeholders and nothing
else: `template_columns` refuses format specs, conversions, attributes and indexes, and
`fill_template` fills the placeholders by hand, never building more than the prompt limit.
str.format would run a spec such as {a:>2000000000} and build a 2 GB string in the web
process.

Where a model may be loaded from (`check_model_source`): the operator's folders
(IMAGINEER_MODEL_ROOTS) and, when allowed, the Hugging Face hub (IMAGINEER_HUB_DOWNLOADS).
"""

import re
import secrets
import string
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from core.errors import CONFLICT, FORBIDDEN
from core.texts import text_rule

PROMPT_MAX = 500
STEPS = (1, 150)
SIZE = (64, 2048)
SIZE_MULTIPLE = 8
GUIDANCE = (1.0, 30.0)
SEED = (0, 2**31 - 1)
NUM_IMAGES = (1, 8)
LORA_WEIGHT = (-2.0, 2.0)
MAX_LORAS = 5
CLIP_SKIP = (1, 12)  # A1111's: 1 is the text encoder's last layer
CLIP_SKIP_DEFAULT = 1
# Image to image: the denoising strength, the mask's blur (pixels), the pixels outpainting
# may add on one side, the hires fix's upscale factor and strength.
STRENGTH = (0.0, 1.0)
MASK_BLUR = (0, 64)
OUTPAINT = (0, 1024)
OUTPAINT_SIDES = ("left", "right", "up", "down")
HIRES_SCALE = (1.5, 2.0)

# Each family's sizes: the width and height a request that leaves them out gets (None: the
# site settings' defaults), the range it takes, and the aspect buckets SDXL was trained at
# (about a megapixel each, multiples of 64; the generate page offers them). A base built at
# shapes of its own, smaller than its family's (the tests' tiny SDXL), takes its own size
# as default and the general range (size_rule).
SDXL_BUCKETS = [(1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216),
                (1344, 768), (768, 1344), (1536, 640), (640, 1536)]
FAMILY_SIZES = {
    "sd15": {"default": None, "range": SIZE, "buckets": []},
    "sd2": {"default": None, "range": SIZE, "buckets": []},
    "sdxl": {"default": (1024, 1024), "range": (512, 2048), "buckets": SDXL_BUCKETS},
}


def size_rule(family, native=None):
    """(default (width, height) or None for the site settings', (low, high)) of a base of
    `family` whose UNet draws `native` pixels a side (read from its configs at
    registration; None: unknown, the family's)."""
    rule = FAMILY_SIZES.get(family, FAMILY_SIZES["sd15"])
    default, (low, high) = rule["default"], rule["range"]
    if native and native < low:  # a model at shapes of its own
        return (native, native), (SIZE[0], high)
    return default, (low, high)


def family_sizes_text():
    """The families' size rules in words, for the API's schema."""
    return "; ".join(
        f"{family}: {low} to {high}" + (f", default {rule['default'][0]}x"
                                        f"{rule['default'][1]}" if rule["default"] else "")
        for family, rule in FAMILY_SIZES.items() for low, high in [rule["range"]])


# Scheduler names accepted by the engine (generation/engine/pipelines.py maps them).
SCHEDULERS = ["pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "lms"]

# The numeric generation parameters (fields of the engine's GenerationParams): kind,
# range and, for sizes, the multiple. The validator below checks them; the API states them
# in its schema (`openapi_rule`), so that clients and the server agree.
NUMBERS = {
    "width": (int, SIZE, SIZE_MULTIPLE),
    "height": (int, SIZE, SIZE_MULTIPLE),
    "steps": (int, STEPS, None),
    "guidance_scale": (float, GUIDANCE, None),
    "seed": (int, SEED, None),
    "num_images": (int, NUM_IMAGES, None),
    "strength": (float, STRENGTH, None),
    "mask_blur": (int, MASK_BLUR, None),
    **{f"outpaint_{side}": (int, OUTPAINT, SIZE_MULTIPLE) for side in OUTPAINT_SIDES},
    "hires_scale": (float, HIRES_SCALE, None),
    "hires_strength": (float, STRENGTH, None),
    "clip_skip": (int, CLIP_SKIP, None),
}

# The defaults of the image to image parameters (not site settings: they mean nothing
# without a source image, and A1111's are these).
IMAGE_DEFAULTS = {"strength": 0.75, "mask_blur": 4, "keep_unmasked": True,
                  **{f"outpaint_{side}": 0 for side in OUTPAINT_SIDES},
                  "hires_scale": 0.0, "hires_strength": 0.5}

# The limits of generation/limits.py (and the worker's batch size), as site settings.
LIMITS = {
    "jobs_per_minute": (1, 10_000),
    "batches_per_hour": (1, 10_000),
    "max_active_jobs": (1, 10_000),
    # The same three for editors (the ones above are the viewers'; admins are exempt).
    "editor_jobs_per_minute": (1, 10_000),
    "editor_batches_per_hour": (1, 10_000),
    "editor_max_active_jobs": (1, 10_000),
    "max_queue": (1, 1_000_000),
    "max_batch": (1, 64),
}

# The NSFW classifier's score from which an image is flagged (a site setting).
NSFW_THRESHOLD = (0.0, 1.0)


def openapi_rule(kind, limits, multiple=None):
    """A number's rule as OpenAPI says it: type, minimum, maximum, multipleOf."""
    rule = {"type": "integer" if kind is int else "number",
            "minimum": limits[0], "maximum": limits[1]}
    if multiple:
        rule["multipleOf"] = multiple
    return rule


def parameter_rule(name):
    """The OpenAPI rule of the numeric generation parameter `name` (NUMBERS)."""
    kind, limits, multiple = NUMBERS[name]
    return openapi_rule(kind, limits, multiple)


def site_settings_rules():
    """The OpenAPI rule of each numeric site setting: a default by its parameter's rule,
    a limit by its range."""
    rules = {f"default_{name}": parameter_rule(name)
             for name in ("width", "height", "steps", "guidance_scale")}
    rules["default_scheduler"] = {"type": "string", "enum": SCHEDULERS}
    rules["default_negative_prompt"] = text_rule(PROMPT_MAX)
    rules.update({name: openapi_rule(int, limits) for name, limits in LIMITS.items()})
    rules["nsfw_threshold"] = openapi_rule(float, NSFW_THRESHOLD)
    return rules


# template_columns' rule as a pattern (the same texts, checked against it): literal text,
# {{ and }}, and {column} placeholders with no format spec, conversion, attribute or index.
TEMPLATE_PATTERN = r"^(?:[^{}]|\{\{|\}\}|\{[^{}!:.\[\]]+:?\})*$"


def template_rule(longest):
    """The OpenAPI rule of a prompt template: a required text DRF strips (text_rule), and
    template_columns' placeholders."""
    return {**text_rule(longest, required=True), "allOf": [{"pattern": TEMPLATE_PATTERN}]}


def template_columns(template):
    """The columns a prompt template's {column} placeholders name, in order. Raises
    ValidationError on `prompt_template` for anything else between braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError(
            {"prompt_template": f"prompt_template is malformed: {exc}."}) from exc
    columns = []
    for _, column, spec, conversion in parsed:
        if column is None:
            continue
        if not column or spec or conversion or any(char in column for char in ".[]"):
            shown = column + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec
                                                                          else "")
            raise ValidationError({"prompt_template": (
                f"prompt_template may hold only {{column}} placeholders (no format spec, "
                f"conversion, attribute or index); {{{shown}}} is not one. Write {{{{ and "
                f"}}}} for braces.")})
        columns.append(column)
    return columns


def fill_template(template, values, limit=PROMPT_MAX):
    """The template with each {column} replaced by values[column]. Raises ValidationError
    on `prompt` as soon as the text would pass `limit` characters (nothing longer is built)."""
    template_columns(template)  # placeholders only
    parts, length = [], 0
    for literal, column, _, _ in string.Formatter().parse(template):
        for part in (literal, None if column is None else str(values.get(column, ""))):
            if not part:
                continue
            length += len(part)
            if length > limit:
                item = ", ".join(f"{key}={value}" for key, value in values.items())
                item = item if len(item) <= 100 else item[:99] + "…"
                raise ValidationError({"prompt": (
                    f"prompt must be 1 to {limit} characters; the prompt template filled "
                    f"with the item {item} makes more.")})
            parts.append(part)
    return "".join(parts)


# A Hugging Face hub repository id: owner/name, letters, digits, "-", "_" and ".".
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
# A model's source as the schema says it (check_model_source's shape): an absolute path or
# a hub id. Whether this server allows it (IMAGINEER_MODEL_ROOTS, IMAGINEER_HUB_DOWNLOADS)
# is its settings' to say: a source they refuse answers 403 (core.errors.FORBIDDEN).
SOURCE_RULE = {"pattern": f"^(/[^\\x00]*|{HUB_ID.pattern})$"}


def check_source_shape(source):
    """A source's shape alone, as SOURCE_RULE says it: what an uploaded model may note as
    where its file came from (it is never loaded from there, so the settings do not
    apply). Raises ValidationError on `source`."""
    if not re.fullmatch(SOURCE_RULE["pattern"], source):
        raise ValidationError({"source": (
            f"{source!r} is neither an absolute path nor a Hugging Face hub id (owner/name).")})


def check_model_source(source):
    """Where a model may be loaded from, the one rule for registering (API, admin, the
    command) and loading (the workers): an absolute path inside IMAGINEER_MODEL_ROOTS,
    symbolic links resolved, or a hub id while IMAGINEER_HUB_DOWNLOADS is on. Returns the
    path, or None for a hub id; raises ValidationError on `source`."""
    if not source or "\0" in source:
        raise ValidationError({"source": "Give a hub id or an absolute local path."})
    path = Path(source)
    if path.is_absolute():
        resolved = path.resolve()
        roots = [Path(root).resolve() for root in settings.IMAGINEER_MODEL_ROOTS]
        if not any(resolved.is_relative_to(root) for root in roots):
            raise ValidationError({"source": ValidationError(
                f"{source} is outside the model folders: local models must be inside "
                f"IMAGINEER_MODEL_ROOTS ({', '.join(str(root) for root in roots)}).",
                code=FORBIDDEN)})
        return path
    if not HUB_ID.fullmatch(source) or _exists(path):  # a relative path, not a hub id
        raise ValidationError({"source": (
            f"{source} is neither an absolute path nor a Hugging Face hub id (owner/name).")})
    if not settings.IMAGINEER_HUB_DOWNLOADS:
        raise ValidationError({"source": ValidationError(
            f"{source}: models from the Hugging Face hub are off. The operator allows them "
            f"with IMAGINEER_HUB_DOWNLOADS=1; or register a folder inside "
            f"IMAGINEER_MODEL_ROOTS.", code=FORBIDDEN)})
    return None


def _exists(path):
    try:
        return path.exists()
    except OSError:  # a name the system will not look up
        return False


def draw_seed():
    return secrets.randbelow(SEED[1] + 1)


def _number(errors, params, field, kind, low, high):
    value = params.get(field)
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise ValueError
        value = kind(value)
    except (TypeError, ValueError):
        errors[field] = f"{field} must be {'a whole number' if kind is int else 'a number'} " \
                        f"between {low} and {high}."
        return None
    if not low <= value <= high:
        errors[field] = f"{field} must be between {low} and {high}; got {value}."
        return None
    return value


def _check_parameters(errors, values, prefix=""):
    """The rules of the parameters a site setting gives the default of; `prefix` names
    the site setting ("default_") so that an error names the field that was sent."""
    field = f"{prefix}negative_prompt"
    negative = str(values.get(field) or "").strip()
    if len(negative) > PROMPT_MAX:
        errors[field] = f"{field} must be at most {PROMPT_MAX} characters; got {len(negative)}."
    values[field] = negative

    for name in ("steps", "width", "height", "guidance_scale"):
        field = f"{prefix}{name}"
        kind, (low, high), multiple = NUMBERS[name]
        value = _number(errors, values, field, kind, low, high)
        if value is not None and multiple and value % multiple:
            errors[field] = (f"{field} must be a multiple of {multiple} between {low} and "
                             f"{high}; got {value}.")
        values[field] = value
    field = f"{prefix}scheduler"
    if values.get(field) not in SCHEDULERS:
        errors[field] = f"{field} must be one of {', '.join(SCHEDULERS)}."


def validate_site_settings(values):
    """Check the site settings: each default by its parameter's rule, each limit by its
    range. Returns the cleaned dict; raises ValidationError({field: message})."""
    cleaned = dict(values)
    errors = {}
    _check_parameters(errors, cleaned, prefix="default_")
    for field, (low, high) in LIMITS.items():
        cleaned[field] = _number(errors, cleaned, field, int, low, high)
    cleaned["nsfw_threshold"] = _number(errors, cleaned, "nsfw_threshold", float,
                                        *NSFW_THRESHOLD)
    if errors:
        raise ValidationError(errors)
    return cleaned


def validate_lora_choice(lora, weight):
    """One LoRA and its weight as a prompt set keeps them, checked when saved by the rule
    validate_generation applies to a job's (a batch then never meets a bad default)."""
    errors = {}
    _validate_loras(errors, [(lora, weight)], None)
    if errors:
        raise ValidationError(errors["loras"])


def validate_lora_choices(loras):
    """A prompt set's LoRAs [(ModelVersion, weight)] all at once: each as
    validate_lora_choice checks it, and how many (the rule of a job's LoRAs)."""
    errors = {}
    _validate_loras(errors, loras, None)
    if errors:
        raise ValidationError({"loras": errors["loras"]})


def _validate_loras(errors, loras, model):
    loras = list(loras)
    if len(loras) > MAX_LORAS:
        errors["loras"] = f"at most {MAX_LORAS} LoRAs; got {len(loras)}."
        return loras
    seen = set()
    for lora, weight in loras:
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            weight = None
        if weight is None or not LORA_WEIGHT[0] <= weight <= LORA_WEIGHT[1]:
            errors["loras"] = (
                f"LoRA weight must be between {LORA_WEIGHT[0]} and {LORA_WEIGHT[1]}; "
                f"{lora} has {weight}."
            )
        elif not lora.is_active:  # retired: named by id only (its name may be unknown here)
            errors["loras"] = ValidationError(f"LoRA {lora.pk} is retired.", code=CONFLICT)
        elif lora.kind != "lora":
            errors["loras"] = f"{lora} is not an active LoRA."
        elif model is not None and lora.family != model.family:
            errors["loras"] = (
                f"{lora} is a {lora.family} LoRA; the base model {model} is {model.family}."
            )
        elif lora.pk in seen:
            errors["loras"] = f"{lora} is listed twice."
        seen.add(lora.pk)
    if "loras" in errors:
        return loras
    return [(lora, float(weight)) for lora, weight in loras]
