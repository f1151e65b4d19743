"""Training parameters: the one place their rules live.

The API, the album's train form and the admin all call `validate_training`. Everything is
refused here, at submit, never in the worker: an error names the field and the allowed
range (or what is wrong with the album or the base model).
"""

from django.core.exceptions import ValidationError

from core.errors import CONFLICT, NO_SUCH_ROW
from generation.rules import SEED, draw_seed, openapi_rule, text_rule
from generation.rules import _number as number  # the same rule and wording

RANK = (1, 128)
ALPHA = (0.1, 1024.0)
LEARNING_RATE = (1e-7, 0.1)
STEPS = (1, 20_000)
BATCH_SIZE = (1, 64)
GRADIENT_ACCUMULATION = (1, 64)
RESOLUTION = (64, 1024)
RESOLUTION_MULTIPLE = 8
CHECKPOINT_EVERY = (0, 20_000)
NAME_MAX = 200
TRIGGER_WORD_MAX = 100
PROMPT_MAX = 500

# What a run gets for each field left out (the seed: a random one, drawn at submit).
DEFAULTS = {
    "rank": 8,
    "alpha": 8.0,
    "learning_rate": 1e-4,
    "steps": 500,
    "batch_size": 1,
    "gradient_accumulation": 1,
    "resolution": 512,
    "seed": None,
    "trigger_word": "",
    "center_crop": True,
    "random_flip": False,
    "train_convolutions": False,
    "checkpoint_every": 100,
    "validation_prompt": "",
}

NUMBERS = {
    "rank": (int, RANK),
    "alpha": (float, ALPHA),
    "learning_rate": (float, LEARNING_RATE),
    "steps": (int, STEPS),
    "batch_size": (int, BATCH_SIZE),
    "gradient_accumulation": (int, GRADIENT_ACCUMULATION),
    "resolution": (int, RESOLUTION),
    "seed": (int, SEED),
    "checkpoint_every": (int, CHECKPOINT_EVERY),
}
TEXTS = {"name": NAME_MAX, "trigger_word": TRIGGER_WORD_MAX, "validation_prompt": PROMPT_MAX}


def openapi_rules():
    """The OpenAPI rule of each numeric field, from NUMBERS, and of each text, from TEXTS
    (the API's schema states them)."""
    rules = {field: openapi_rule(kind, limits, RESOLUTION_MULTIPLE if field == "resolution"
                                 else None)
             for field, (kind, limits) in NUMBERS.items()}
    rules.update({field: text_rule(longest, required=field == "name")
                  for field, longest in TEXTS.items()})
    return rules


def validate_training(params, *, user):
    """Check a training run's parameters for `user`; fill the defaults; draw a seed.

    `params` holds album (an Album), name, and optionally base_model (a ModelVersion, None
    for the default base) and the config fields of DEFAULTS. Returns the cleaned dict;
    raises ValidationError({field: message}).
    """
    cleaned = dict(DEFAULTS)
    cleaned.update({key: value for key, value in params.items() if value is not None})
    errors = {}

    for field, (kind, (low, high)) in NUMBERS.items():
        if field == "seed" and cleaned["seed"] in (None, ""):
            cleaned["seed"] = draw_seed()
            continue
        cleaned[field] = number(errors, cleaned, field, kind, low, high)
    resolution = cleaned["resolution"]
    if resolution is not None and resolution % RESOLUTION_MULTIPLE:
        errors["resolution"] = (f"resolution must be a multiple of {RESOLUTION_MULTIPLE} "
                                f"between {RESOLUTION[0]} and {RESOLUTION[1]}; got {resolution}.")

    for field, longest in TEXTS.items():
        text = str(cleaned.get(field) or "").strip()
        if len(text) > longest:
            errors[field] = f"{field} must be at most {longest} characters; got {len(text)}."
        cleaned[field] = text
    if not cleaned["name"]:
        errors["name"] = f"name must be 1 to {NAME_MAX} characters; it is empty."
    for field in ("center_crop", "random_flip", "train_convolutions"):
        cleaned[field] = bool(cleaned[field])

    album_error = check_album(cleaned.get("album"), user)
    if album_error:
        errors["album"] = album_error
    cleaned["base_model"], model_error = check_base_model(cleaned.get("base_model"), user)
    if model_error:
        errors["base_model"] = model_error

    if errors:
        raise ValidationError(errors)
    return cleaned


def check_album(album, user):
    """The album's problem as a message, or None: it must be one the user may see, not
    empty, with at least one image the trainer can read (odd modes and sizes are fine:
    the trainer converts them)."""
    from albums.models import Album

    if album is None:
        return "album is required: the id of the album to train on."
    if not Album.objects.visible_to(user).filter(pk=album.pk).exists():
        return ValidationError(f"album: there is no album with id {album.pk}.",
                               code=NO_SUCH_ROW)
    images = list(album.images.only("id", "file"))
    if not images:  # the album's state, not the request: 409 (core.errors.CONFLICT)
        return ValidationError(
            f"album: {album.name} has no images; add some before training on it.",
            code=CONFLICT)
    if not any(_usable(image) for image in images):
        return ValidationError(f"album: none of the {len(images)} images of {album.name} "
                               "can be read as an image.", code=CONFLICT)
    return None


def _usable(image):
    """Whether the trainer can open the image's stored file (checked through the storage,
    so that it holds for S3 too). Stops at the first usable image in check_album."""
    from django.core.files.storage import default_storage

    from .trainer import open_rgb

    try:
        with default_storage.open(image.file.name, "rb") as file:
            open_rgb(file)
    except Exception:  # missing, unreadable, not an image: not usable, whatever the cause
        return False
    return True


def check_base_model(model, user):
    """(the base model, its problem as a message or None); None means the default base,
    which must be one `user`'s role may use (ModelVersion.usable_by)."""
    from generation.models import SUPPORTED_FAMILIES, ModelVersion

    model = model or ModelVersion.objects.default_base()
    if model is None:
        return None, ValidationError(  # the server's state, not the request: 409
            "base_model: no base model is registered; run `manage.py create_demo_model`.",
            code=CONFLICT)
    if model.kind != ModelVersion.Kind.BASE or not model.is_active:
        return model, f"base_model must be an active base model; {model} is not."
    refusal = model.refusal_for(user, "base_model")
    if refusal:
        return model, refusal
    if model.family not in SUPPORTED_FAMILIES:
        supported = ", ".join(sorted(SUPPORTED_FAMILIES))
        return model, (f"base_model: {model} is a {model.get_family_display()} model; "
                       f"training supports the families {supported}.")
    return model, None
