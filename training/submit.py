"""Starting and retrying runs: the row and its queue task, in one transaction."""

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.limits import check_storage, lock_user, throttle
from core.errors import CONFLICT, as_conflict

from .models import TrainingRun
from .tasks import enqueue_run
from .validation import check_album, check_base_model

CONFIG_FIELDS = ["rank", "alpha", "learning_rate", "steps", "batch_size",
                 "gradient_accumulation", "resolution", "seed", "trigger_word", "center_crop",
                 "random_flip", "train_convolutions", "checkpoint_every", "validation_prompt"]


def submit_run(user, cleaned):
    """Queue a run from parameters cleaned by validate_training. Counted against the
    user's throttle ("training"), and refused while they are at their storage quota (the
    run will store a LoRA): LimitExceeded."""
    throttle(user, "training")
    with transaction.atomic():
        lock_user(user)
        check_storage(user)
        run = TrainingRun.objects.create(
            owner=user, name=cleaned["name"], album=cleaned["album"],
            base_model=cleaned["base_model"],
            **{field: cleaned[field] for field in CONFIG_FIELDS},
        )
        transaction.on_commit(lambda: enqueue_run(run))
    return run


def retry_run(run, by=None):
    """Queue a failed or cancelled run again; it resumes from its checkpoint if it has one.
    Counted against the throttle ("training") of `by`, who asks for it, and refused while
    the run's owner is at their storage quota, as a new run is: LimitExceeded.

    The album and the base model are checked again (they may have changed since), so a
    run that cannot train is refused here rather than failing in the worker.
    Raises ValidationError naming the field, or the status when it cannot be retried: every
    message a conflict (409), as the request names no values of its own (as_conflict).
    """
    throttle(by, "training")
    errors = {}
    album_error = check_album(run.album, run.owner) if run.album else \
        "album: the album of this run was deleted."
    if album_error:
        errors["album"] = album_error
    _, model_error = check_base_model(run.base_model, run.owner)
    if model_error:
        errors["base_model"] = model_error
    if errors:  # the original's values, checked again: what changed since is the state
        raise as_conflict(ValidationError(errors))
    with transaction.atomic():
        lock_user(run.owner)
        check_storage(run.owner)
        if not run.retry():
            raise ValidationError({"status": ValidationError(
                f"only a failed or cancelled run can be retried; this one is {run.status}.",
                code=CONFLICT)})
        transaction.on_commit(lambda: enqueue_run(run))
    return run
