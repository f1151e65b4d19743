"""Submitting work: the parameters' rules, the limits, the rows and the queue tokens.

The one place where a submission is accepted or refused, whatever sent it (the API, the
pages, a batch, the admin's remix): a refusal is counted here by its reason, for
/metrics, once its transaction has rolled back.
"""

from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.limits import lock_user
from albums.ingest import atomic_ingest, reserve_storage, store_image
from albums.models import Album, Image
from core.errors import CONFLICT, LimitExceeded, as_conflict

from .limits import check_submission
from .models import Batch, Counter, Job, ModelVersion, PromptSetItem
from .tasks import enqueue_job_token, let_held_jobs_in
from .validation import draw_seed, generation_defaults, validate_generation

# The fields of a batch's parameters that differ by item (the others are the set's and
# the request's, the same for every item).
ITEM_FIELDS = {"prompt"}
# Items named in a refused batch's errors, per field.
ITEM_ERRORS = 10


@contextmanager
def refusals_counted():
    """Count a submission refused by a rule (imagineer_jobs_rejected_total{reason})."""
    try:
        yield
    except ValidationError:
        Counter.add("jobs_rejected", reason="invalid")
        raise
    except LimitExceeded as exc:
        Counter.add("jobs_rejected", reason=exc.reason)
        raise


@refusals_counted()
def submit_job(user, params, *, remix_of=None):
    """Queue one job. `params`: the generation parameters as validate_generation takes
    them, the LoRAs as "loras": [(ModelVersion, weight)]; checked here. An uploaded mask
    is stored as the user's image with the job, or not at all (atomic_ingest)."""
    params = dict(params)
    cleaned = validate_generation(params, loras=params.pop("loras", None) or (), user=user)
    with atomic_ingest():
        lock_user(user)
        check_submission(user)
        upload = cleaned.pop("mask_upload", None)
        if upload is not None:
            reserve_storage(user, {upload.sha256: len(upload.data)})  # the quota (413)
            cleaned["mask"], _ = store_image(upload.data, filename=upload.filename,
                                             source=Image.Source.UPLOAD, created_by=user,
                                             checked=upload)
        job = Job.create_from(cleaned, owner=user, remix_of=remix_of)
        transaction.on_commit(enqueue_job_token)
    return job


def remix_job(user, job):
    """Run a job again with the same seed, model, LoRAs and parameters. What no longer
    passes (a retired model, a deleted source image) is a conflict (409), not a bad
    request."""
    try:
        return submit_job(user, job.same_parameters(), remix_of=job)
    except ValidationError as exc:
        raise as_conflict(exc) from exc


@refusals_counted()
def submit_batch(user, prompt_set, *, theme="", overrides=None):
    """One job per item of the set; the images are collected into an album. The jobs
    enter the queue as it has room (limits.py): an accepted batch runs to the end, however
    large, and is never refused because the queue is full."""
    overrides = dict(overrides or {})
    loras = overrides.pop("loras", None)
    if loras is None:
        loras = prompt_set.lora_choices()
    items = list(PromptSetItem.objects.filter(prompt_set=prompt_set))
    if not items:
        raise ValidationError({"set": ValidationError(
            f"the prompt set {prompt_set.slug} has no items.", code=CONFLICT)})
    base = {"width": prompt_set.width, "height": prompt_set.height,
            "negative_prompt": prompt_set.negative_prompt, **overrides}
    # One seed for the whole batch unless given: the items differ by prompt.
    if base.get("seed") is None:
        base["seed"] = draw_seed()
    # What every item shares is read once: the site settings' defaults and the model.
    if base.get("model") is None:
        base["model"] = ModelVersion.objects.default_base()
    cleaned_items = validate_items(user, prompt_set, items, base, loras, theme)
    with transaction.atomic():
        lock_user(user)
        check_submission(user, batch=True)
        title = f"{prompt_set.name} {theme}".strip()
        batch = Batch.objects.create(prompt_set=prompt_set, theme=theme, owner=user,
                                     total=len(items))
        batch.album = Album.objects.create(name=f"{title} (batch {batch.pk})", owner=user)
        batch.save(update_fields=["album"])
        # Held: the queue lets in what it has room for (limits.release_held_jobs).
        Job.create_batch(cleaned_items, owner=user, batch=batch)
        let_held_jobs_in()
    return batch


def validate_items(user, prompt_set, items, base, loras, theme):
    """Check every item's parameters before anything is written (validate_generation, as
    `user`: the model and LoRAs must be theirs to use). An item's own error (its prompt)
    names the item; an error of what all items share is said once. At most ITEM_ERRORS
    items are named per field."""
    defaults = generation_defaults()
    cleaned_items, errors, failed = [], {}, {}
    for item in items:
        try:
            prompt = prompt_set.prompt_for(item, theme)
            cleaned_items.append(
                validate_generation({**base, "prompt": prompt}, loras=loras, user=user,
                                    defaults=defaults))
        except ValidationError as error:
            # Each error keeps its code (a conflict stays a conflict: core.api's statuses).
            for field, field_errors in error.error_dict.items():
                if field not in ITEM_FIELDS:
                    errors.setdefault(field, field_errors)
                    continue
                failed[field] = failed.get(field, 0) + 1
                if failed[field] <= ITEM_ERRORS:
                    errors.setdefault(field, []).extend(
                        ValidationError(f"{item_name(item)}: {message}", code=each.code)
                        for each in field_errors for message in each.messages)
    for field, count in failed.items():
        if count > ITEM_ERRORS:
            errors[field].append(f"... and {count - ITEM_ERRORS} more items.")
    if errors:
        raise ValidationError(errors)
    return cleaned_items


def item_name(item):
    """How an error names a set's item: its number and its values."""
    values = ", ".join(f"{key}={value}" for key, value in item.values.items())
    if len(values) > 80:
        values = values[:79] + "…"
    return f"item {item.position + 1} ({values})"
