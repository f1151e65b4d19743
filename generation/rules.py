"""The rules of the generation parameters and the site settings: ranges, multiples,
choices, and the checks that need no database. One table (NUMBERS) is read by the
validator, the API's schema (openapi_rule) and the forms.

generation/validation.py applies them to a request (defaults, the model, the LoRAs); the
models import this module, never that one, so the two do not import each other.
"""

import secrets

from django.core.exceptions import ValidationError

PROMPT_MAX = 500
STEPS = (1, 150)
SIZE = (64, 2048)
SIZE_MULTIPLE = 8
GUIDANCE = (1.0, 30.0)
SEED = (0, 2**31 - 1)
NUM_IMAGES = (1, 8)
LORA_WEIGHT = (-2.0, 2.0)
MAX_LORAS = 5

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
}

# The limits of generation/limits.py (and the worker's batch size), as site settings.
LIMITS = {
    "jobs_per_minute": (1, 10_000),
    "batches_per_hour": (1, 10_000),
    "max_active_jobs": (1, 10_000),
    "max_queue": (1, 1_000_000),
    "max_batch": (1, 64),
}


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
    rules.update({name: openapi_rule(int, limits) for name, limits in LIMITS.items()})
    return rules


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
        elif lora.kind != "lora" or not lora.is_active:
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
