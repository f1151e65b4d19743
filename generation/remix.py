"""Starting a generation from a picture: its prompt and parameters, as far as ours go.

    initial, notes = start_from_image(image)

A picture made here names its job (remixed as the job: submit.remix_job). A picture
made elsewhere carries what albums/metadata.py read from it at ingest: the tool's
sampler name, its model's name and hash, its numbers. This maps them to ours, for the
generate page's form: the sampler to one of our schedulers (pipelines.
scheduler_for_sampler), the model hash (A1111's short sha256, which Fooocus writes too)
or the model's name to a registered, active base model; numbers outside our ranges are
left to the defaults. `notes` says, in words for the page, what could not be carried
over: the model that is missing here, a sampler we do not have, Karras sigmas.
"""

from pathlib import PurePath

from .engine.pipelines import scheduler_for_sampler
from .models import ModelVersion
from .rules import NUMBERS, PROMPT_MAX

HASH_MIN = 8  # hex digits of a hash worth matching (A1111's short hash has 10)


def start_from_image(image):
    """(initial values for the generate form, notes) from `image`'s prompt and params."""
    params = image.params if isinstance(image.params, dict) else {}
    notes = []
    initial = {"prompt": image.prompt[:PROMPT_MAX]}
    if len(image.prompt) > PROMPT_MAX:
        notes.append(f"The prompt was cut to our {PROMPT_MAX} characters.")
    if params.get("negative_prompt"):
        initial["negative_prompt"] = str(params["negative_prompt"])[:PROMPT_MAX]
    for name in ("steps", "guidance_scale", "seed", "width", "height", "clip_skip"):
        value = params.get(name)
        kind, (low, high), _ = NUMBERS[name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            if low <= value <= high:
                initial[name] = kind(value)
            else:
                notes.append(f"{name} {value} is outside our range ({low} to {high}); "
                             "the default is used.")
    if "width" in initial and "height" in initial:
        initial["size"] = f"{initial.pop('width')}x{initial.pop('height')}"
    _scheduler(params, initial, notes)
    _model(params, initial, notes)
    return initial, notes


def _scheduler(params, initial, notes):
    sampler = params.get("scheduler") if params.get("job") else params.get("sampler")
    if not sampler:
        return
    scheduler, karras = scheduler_for_sampler(str(sampler))
    karras = karras or str(params.get("schedule", "")).lower() == "karras"
    if scheduler is None:
        notes.append(f"The sampler {sampler} is not one we have; the default scheduler is "
                     "used.")
        return
    initial["scheduler"] = scheduler
    if karras:
        notes.append(f"The sampler {sampler} used Karras sigmas; {scheduler} here uses the "
                     "model's own schedule.")


def _model(params, initial, notes):
    name, short_hash = params.get("model"), str(params.get("model_hash") or "").lower()
    if not name and not short_hash:
        return
    model = matching_model(name, short_hash)
    if model is not None:
        initial["model"] = model.pk
        return
    described = " ".join(part for part in [
        str(name) if name else "", f"(hash {short_hash})" if short_hash else ""] if part)
    notes.append(f"The model {described} is not registered here; the default model is used. "
                 "An admin can register it (docs/models.md).")


def matching_model(name, short_hash=""):
    """The active base model whose sha256 starts with `short_hash`, else the one named
    `name` (or its file name without the extension, as ComfyUI writes it), else None."""
    bases = ModelVersion.objects.bases().active()
    if len(short_hash) >= HASH_MIN and all(c in "0123456789abcdef" for c in short_hash):
        model = bases.filter(sha256__startswith=short_hash).first()
        if model is not None:
            return model
    if name:
        stem = PurePath(str(name)).stem
        for candidate in dict.fromkeys([str(name), stem]):
            model = bases.filter(name__iexact=candidate).order_by("-created_at").first()
            if model is not None:
                return model
    return None
