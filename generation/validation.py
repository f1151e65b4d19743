"""Generation parameters: the one place their rules are applied to a request.

The API serializers, the generate form, prompt sets and the admin all call
`validate_generation`; the site settings (the defaults and limits admins change)
call `validate_site_settings`, which checks each default by the same rule as the
parameter it fills. An error names the field and the allowed range. The rules
themselves (ranges, choices, the schema's view of them) are in generation/rules.py.
"""

from django.core.exceptions import ValidationError

from core.errors import CONFLICT, NO_SUCH_ROW

from .rules import (  # noqa: F401  (the rules, for callers that check a request)
    CLIP_SKIP,
    CLIP_SKIP_DEFAULT,
    GUIDANCE,
    HIRES_SCALE,
    IMAGE_DEFAULTS,
    LIMITS,
    LORA_WEIGHT,
    MASK_BLUR,
    MAX_LORAS,
    NUM_IMAGES,
    NUMBERS,
    OUTPAINT,
    OUTPAINT_SIDES,
    PROMPT_MAX,
    SCHEDULERS,
    SEED,
    SIZE,
    SIZE_MULTIPLE,
    STEPS,
    STRENGTH,
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
    text_rule,
    validate_lora_choice,
    validate_lora_choices,
    validate_site_settings,
)


def generation_defaults():
    """Defaults for every field but the prompt, from the site settings."""
    from .models import SiteSettings

    return SiteSettings.current().generation_defaults()


def validate_generation(params, *, loras=(), require_prompt=True, user=None, defaults=None):
    """Check and normalise generation parameters; fill the defaults; draw a seed.

    `params` holds prompt, negative_prompt, width, height, steps, guidance_scale, seed,
    scheduler, num_images, clip_skip and model (a ModelVersion or None for the default
    base), and for image to image init_image and mask (an Image or its id; the mask also an uploaded
    file), strength, mask_blur, keep_unmasked, outpaint_<side> and hires_scale,
    hires_strength (see `_check_image_parameters`), and upscaler (a ModelVersion of kind
    upscaler or None: the plain resampler; `_check_upscaler`); `user` is who asks (the
    images must be theirs to see, the model, LoRAs and upscaler theirs to use:
    ModelVersion.usable_by). `loras` is
    a list of (ModelVersion, weight). `defaults`: the site settings' generation_defaults(),
    when the caller read them once for many prompts (a batch). Returns the cleaned dict,
    with "model", "loras", "init_image" and "mask" resolved (an uploaded mask as
    "mask_upload", checked, not stored); raises ValidationError({field: message}).
    """
    from .models import ModelVersion

    cleaned = {**(defaults or generation_defaults()), **IMAGE_DEFAULTS,
               "clip_skip": CLIP_SKIP_DEFAULT}
    sent = {key: value for key, value in params.items() if value is not None}
    cleaned.update(sent)
    errors = {}

    prompt = str(cleaned.get("prompt") or "").strip()
    if require_prompt and not prompt:
        errors["prompt"] = f"prompt must be 1 to {PROMPT_MAX} characters; it is empty."
    elif len(prompt) > PROMPT_MAX:
        errors["prompt"] = f"prompt must be 1 to {PROMPT_MAX} characters; got {len(prompt)}."
    cleaned["prompt"] = prompt
    model = cleaned.get("model") or ModelVersion.objects.default_base()
    family_default = model.size_rule()[0] if model is not None else None
    for name, value in zip(("width", "height"), family_default or (), strict=False):
        if name not in sent:  # the base's family's default size (SDXL's 1024)
            cleaned[name] = value
    _check_parameters(errors, cleaned)
    cleaned["num_images"] = _number(errors, cleaned, "num_images", int,
                                    *NUMBERS["num_images"][1])
    cleaned["clip_skip"] = _number(errors, cleaned, "clip_skip", int, *CLIP_SKIP)
    if cleaned.get("seed") in (None, ""):
        cleaned["seed"] = draw_seed()
    else:
        cleaned["seed"] = _number(errors, cleaned, "seed", int, *NUMBERS["seed"][1])

    if model is None:
        errors["model"] = ValidationError(
            "no base model is registered; run `manage.py create_demo_model`.", code=CONFLICT)
    elif not model.is_active:  # retired: named by id only (its name may be unknown here)
        errors["model"] = ValidationError(
            f"model must be an active base model; model {model.pk} is retired.", code=CONFLICT)
    elif model.kind != ModelVersion.Kind.BASE:
        errors["model"] = f"model must be an active base model; {model} is not."
    cleaned["model"] = model

    cleaned["loras"] = _validate_loras(errors, loras, model)
    if user is not None:
        _check_usable(errors, cleaned, user)
    _check_image_parameters(errors, cleaned, sent, user)
    if "model" not in errors:
        _check_family_size(errors, cleaned, model)
    _check_upscaler(errors, cleaned, user)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _check_family_size(errors, cleaned, model):
    """Width and height within the range of the base's family (rules.FAMILY_SIZES: SDXL's
    from 512), beyond the general one (_check_parameters)."""
    _, (low, high) = model.size_rule()
    for name in ("width", "height"):
        value = cleaned.get(name)
        if name not in errors and value is not None and not low <= value <= high:
            errors[name] = (f"{name} must be between {low} and {high} for a "
                            f"{model.get_family_display()} base model; got {value}.")


def _check_usable(errors, cleaned, user):
    """The model and LoRAs must be ones `user`'s role may use (ModelVersion.usable_by),
    whatever chose them: the request, a prompt set's LoRAs, a job run again."""
    model = cleaned["model"]
    refusal = model.refusal_for(user, "model") if model and "model" not in errors else None
    if refusal:
        errors["model"] = refusal
    if "loras" not in errors:
        refusals = [lora.refusal_for(user, "loras") for lora, _ in cleaned["loras"]]
        if any(refusals):
            errors["loras"] = next(filter(None, refusals))


def _check_upscaler(errors, cleaned, user):
    """upscaler: an active upscaler model `user`'s role may use (refused in the same words
    whether it exists or not), or None for the plain resampler; only where a picture is
    made larger: the hires fix, or an init_image drawn at a larger size."""
    from .models import ModelVersion

    upscaler = cleaned.get("upscaler") or None
    cleaned["upscaler"] = upscaler
    if upscaler is None:
        return
    if (not isinstance(upscaler, ModelVersion) or upscaler.kind != ModelVersion.Kind.UPSCALER
            or not upscaler.is_active):
        errors["upscaler"] = ModelVersion.refusal(
            "upscaler", getattr(upscaler, "pk", upscaler), "upscaler")
        return
    refusal = upscaler.refusal_for(user, "upscaler") if user is not None else None
    if refusal:  # the role's rule, in the words of the model's and the LoRAs' (_check_usable)
        errors["upscaler"] = refusal
        return
    init = cleaned.get("init_image")
    larger = init is not None and None not in (cleaned.get("width"), cleaned.get("height")) \
        and (cleaned["width"] > init.width or cleaned["height"] > init.height)
    if not (cleaned.get("hires_scale") or larger) and not errors.keys() & {
            "init_image", "hires", "width", "height"}:
        errors["upscaler"] = ("upscaler makes a picture larger: give hires, or an init_image "
                              "with a width or height above its own.")


def _check_image_parameters(errors, cleaned, sent, user):
    """The rules of image to image. init_image: an image `user` may see (one they may not
    is answered as a missing one); mask: the same, or an uploaded PNG, of init_image's
    size. With init_image and no width or height sent, the picture keeps its own size (to
    a multiple of 8 within the size limits). outpaint_<side>: pixels to add, a multiple of
    8, with init_image only; the canvas stays within the size limit. hires_scale: 0 (off)
    or 1.5 to 2, for text to image only; the upscaled size stays within the size limit.
    Errors name the API's fields: init_image, mask, strength, mask_blur, outpaint, hires."""
    for name in ("strength", "mask_blur", "hires_strength"):
        kind, (low, high), _ = NUMBERS[name]
        field = "hires" if name == "hires_strength" else name
        problems = {}
        cleaned[name] = _number(problems, cleaned, name, kind, low, high)
        if problems:
            errors[field] = problems[name].replace("hires_strength", "hires.strength")
    cleaned["keep_unmasked"] = bool(cleaned.get("keep_unmasked"))

    for side in OUTPAINT_SIDES:
        name = f"outpaint_{side}"
        problems = {}
        value = _number(problems, cleaned, name, int, *OUTPAINT)
        if value is not None and value % SIZE_MULTIPLE:
            problems[name] = f"must be a multiple of {SIZE_MULTIPLE}"
        if problems:
            errors["outpaint"] = (f"outpaint.{side} must be a multiple of {SIZE_MULTIPLE} "
                                  f"between {OUTPAINT[0]} and {OUTPAINT[1]}; got "
                                  f"{cleaned.get(name)!r}.")
        cleaned[name] = value or 0

    scale = cleaned.get("hires_scale") or 0
    if scale:
        problems = {}
        scale = _number(problems, cleaned, "hires_scale", float, *HIRES_SCALE)
        if problems:
            errors["hires"] = (f"hires.scale must be between {HIRES_SCALE[0]} and "
                               f"{HIRES_SCALE[1]}; got {cleaned.get('hires_scale')!r}.")
    cleaned["hires_scale"] = scale or 0.0

    init = cleaned["init_image"] = _visible_image(errors, "init_image",
                                                  cleaned.get("init_image"), user)
    mask, upload = _mask(errors, cleaned.get("mask"), user)
    cleaned["mask"], cleaned["mask_upload"] = mask, upload
    if init is None:
        # (IMAGE_RULE says these in the schema.) An init_image sent but refused answers
        # alone: a 404 when it names no image you may see.
        if (mask or upload) and "init_image" not in errors:
            errors["mask"] = "mask needs an init_image to paint over."
        if any(cleaned[f"outpaint_{side}"] for side in OUTPAINT_SIDES) and (
                "init_image" not in errors):
            errors["outpaint"] = "outpaint needs an init_image to extend."
    else:
        size = (mask.width, mask.height) if mask else (
            (upload.width, upload.height) if upload else None)
        if size and size != (init.width, init.height):  # init_image's size: state (409)
            errors["mask"] = ValidationError(
                f"mask is {size[0]}x{size[1]}; it must be the size of init_image, "
                f"{init.width}x{init.height}.", code=CONFLICT)
        if cleaned["hires_scale"]:
            errors["hires"] = ("hires is for text to image; with an init_image, draw "
                               "again at a larger width and height instead.")
        for name, pixels in (("width", init.width), ("height", init.height)):
            if name not in sent:
                multiple = pixels // SIZE_MULTIPLE * SIZE_MULTIPLE
                cleaned[name] = min(max(multiple, SIZE[0]), SIZE[1])
    _check_result_size(errors, cleaned)


# The rules across the image to image fields of a job (_check_image_parameters), as
# OpenAPI says them in the schema of a job's body: a mask (an id, or a file in a form) and
# outpainting (a side of 1 pixel or more) need an init_image; the hires fix is for text to
# image only. (`null` is no mask; no `enum`, which drf-spectacular's hooks rewrite.)
def _given(field, schema):
    return {"required": [field], "properties": {field: schema}}


_INIT_IMAGE = _given("init_image", {"type": "integer"})
IMAGE_RULE = {"allOf": [
    {"anyOf": [{"not": _given("mask", {"anyOf": [{"type": "integer"}, {"type": "string"}]})},
               _INIT_IMAGE]},
    {"anyOf": [{"not": _given("outpaint", {"type": "object", "anyOf": [
        _given(side, {"type": "integer", "minimum": 1}) for side in OUTPAINT_SIDES]})},
        _INIT_IMAGE]},
    {"not": {"allOf": [_INIT_IMAGE, _given("hires", {"type": "object"})]}},
]}


def _check_result_size(errors, cleaned):
    """The canvas (with outpainting) and the hires result stay within SIZE. Not when the
    init_image was refused: its canvas is unknown, and it answers alone (a 404)."""
    if any(cleaned.get(name) is None for name in ("width", "height")) or errors.keys() & {
            "outpaint", "hires", "init_image"}:
        return
    width = cleaned["width"] + cleaned["outpaint_left"] + cleaned["outpaint_right"]
    height = cleaned["height"] + cleaned["outpaint_up"] + cleaned["outpaint_down"]
    if max(width, height) > SIZE[1]:
        errors["outpaint"] = (f"outpaint makes the picture {width}x{height}; at most "
                              f"{SIZE[1]} pixels a side.")
        return
    scale = cleaned["hires_scale"]
    if scale:
        big = [max(8, round(side * scale / 8) * 8) for side in (width, height)]
        if max(big) > SIZE[1]:
            errors["hires"] = (f"hires.scale {scale:g} makes the picture {big[0]}x{big[1]}; "
                               f"at most {SIZE[1]} pixels a side.")


def _image_id(value):
    """An image's id from an Image, an int or a text of digits; None for anything else."""
    from albums.models import Image

    if isinstance(value, Image):
        return value.pk
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _visible_image(errors, field, value, user):
    """The Image `value` names if `user` may see it; else an error on `field` that reads
    the same whether the image exists or not."""
    from albums.models import Image

    if value in (None, ""):
        return None
    pk = _image_id(value)
    image = None
    if pk is not None and 0 < pk < 2**63 and user is not None:
        image = Image.objects.visible_to(user).filter(pk=pk).first()
    if image is None:  # an id naming no image you can see is not found (404), else 400
        errors[field] = ValidationError(
            f"{field} must be the id of an image you can see; {value!r} is not.",
            code=NO_SUCH_ROW if pk is not None else "invalid")
    return image


def _mask(errors, value, user):
    """The mask: (an Image the user may see, None) or (None, an uploaded PNG checked by
    albums.ingest.inspect_image, not stored)."""
    from albums.ingest import ImageRejected, inspect_image

    if hasattr(value, "read"):
        name = getattr(value, "name", None) or "mask.png"
        value.seek(0)
        try:
            checked = inspect_image(value.read(), name)
        except ImageRejected as exc:
            errors["mask"] = f"mask: {exc}"
            return None, None
        if checked.format != "PNG":
            errors["mask"] = f"mask: {name} must be a PNG; it is a {checked.format}."
            return None, None
        return None, checked
    return _visible_image(errors, "mask", value, user), None
