"""Generation parameters: the one place their rules are applied to a request.

The API serializers, the generate form, prompt sets and the admin all call
`validate_generation`; the site settings (the defaults and limits admins change)
call `validate_site_settings`, which checks each default by the same rule as the
parameter it fills. An error names the field and the allowed range. The rules
themselves (ranges, choices, the schema's view of them) are in generation/rules.py.
"""

from django.core.exceptions import ValidationError

from .rules import (  # noqa: F401  (the rules, for callers that check a request)
    GUIDANCE,
    LIMITS,
    LORA_WEIGHT,
    MAX_LORAS,
    NUM_IMAGES,
    NUMBERS,
    PROMPT_MAX,
    SCHEDULERS,
    SEED,
    SIZE,
    SIZE_MULTIPLE,
    STEPS,
    _check_parameters,
    _number,
    _validate_loras,
    check_model_source,
    draw_seed,
    fill_template,
    openapi_rule,
    parameter_rule,
    site_settings_rules,
    template_columns,
    validate_lora_choice,
    validate_lora_choices,
    validate_site_settings,
)


def generation_defaults():
    """Defaults for every field but the prompt, from the site settings."""
    from .models import SiteSettings

    return SiteSettings.current().generation_defaults()


def validate_generation(params, *, loras=(), require_prompt=True):
    """Check and normalise generation parameters; fill the defaults; draw a seed.

    `params` holds prompt, negative_prompt, width, height, steps, guidance_scale, seed,
    scheduler, num_images and model (a ModelVersion or None for the default base).
    `loras` is a list of (ModelVersion, weight). Returns the cleaned dict, with
    "model" and "loras" resolved; raises ValidationError({field: message}).
    """
    from .models import ModelVersion

    cleaned = generation_defaults()
    cleaned.update({key: value for key, value in params.items() if value is not None})
    errors = {}

    prompt = str(cleaned.get("prompt") or "").strip()
    if require_prompt and not prompt:
        errors["prompt"] = f"prompt must be 1 to {PROMPT_MAX} characters; it is empty."
    elif len(prompt) > PROMPT_MAX:
        errors["prompt"] = f"prompt must be 1 to {PROMPT_MAX} characters; got {len(prompt)}."
    cleaned["prompt"] = prompt
    _check_parameters(errors, cleaned)
    cleaned["num_images"] = _number(errors, cleaned, "num_images", int,
                                    *NUMBERS["num_images"][1])
    if cleaned.get("seed") in (None, ""):
        cleaned["seed"] = draw_seed()
    else:
        cleaned["seed"] = _number(errors, cleaned, "seed", int, *NUMBERS["seed"][1])

    model = cleaned.get("model") or ModelVersion.objects.default_base()
    if model is None:
        errors["model"] = "no base model is registered; run `manage.py create_demo_model`."
    elif not model.is_active:  # retired: named by id only (its name may be unknown here)
        errors["model"] = f"model must be an active base model; model {model.pk} is retired."
    elif model.kind != ModelVersion.Kind.BASE:
        errors["model"] = f"model must be an active base model; {model} is not."
    cleaned["model"] = model

    cleaned["loras"] = _validate_loras(errors, loras, model)
    if errors:
        raise ValidationError(errors)
    return cleaned
