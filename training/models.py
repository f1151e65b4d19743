"""Training runs: an album becomes a LoRA.

A TrainingRun owns its state changes (start, record progress, finish, fail, cancel,
requeue, retry). Each is a conditional UPDATE, so a worker, a second worker and a user's
cancel can never both win: the row's status (and, while running, its worker) decides.
Its parameters are checked in one place, training/validation.py.

On the worker's disk a run keeps one folder, IMAGINEER_TRAINING_DIR/run-<id>/:
checkpoints/ (kept until the run succeeds, so that a retry resumes from them) and work/
(the images and the output of one attempt).
"""

import shutil

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from albums.models import Album, Image
from generation.models import Counter, ModelVersion
from workers.models import LeasedWork, LeasedWorkQuerySet

from .validation import DEFAULTS

# The loss history keeps at most about this many points: long runs record the mean loss
# of every N steps (the trainer's loss_every).
MAX_LOSS_POINTS = 500
# The log tail keeps this many lines.
LOG_LINES = 60


class TrainingRunQuerySet(LeasedWorkQuerySet):
    def visible_to(self, user):
        """Editors and admins (training.see_all_runs) see every run; others their own."""
        if user.has_perm("training.see_all_runs"):
            return self
        return self.filter(owner=user)


class TrainingRun(LeasedWork):
    """One LoRA trained from an album on a base model, run by a training worker. Its
    status, worker, lease and attempts are LeasedWork's (workers/models.py)."""

    max_attempts_setting = "IMAGINEER_TRAINING_MAX_ATTEMPTS"
    noun = "training"

    name = models.CharField(max_length=200)
    album = models.ForeignKey(Album, null=True, on_delete=models.SET_NULL,
                              related_name="training_runs", help_text="The training set.")
    base_model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT,
                                   related_name="training_runs",
                                   limit_choices_to={"kind": "base"})
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="training_runs")

    # The configuration (ranges: training/validation.py).
    rank = models.PositiveIntegerField(default=DEFAULTS["rank"])
    alpha = models.FloatField(default=DEFAULTS["alpha"])
    learning_rate = models.FloatField(default=DEFAULTS["learning_rate"])
    steps = models.PositiveIntegerField(default=DEFAULTS["steps"])
    batch_size = models.PositiveIntegerField(default=DEFAULTS["batch_size"])
    gradient_accumulation = models.PositiveIntegerField(
        default=DEFAULTS["gradient_accumulation"])
    resolution = models.PositiveIntegerField(default=DEFAULTS["resolution"])
    seed = models.BigIntegerField(default=0)
    trigger_word = models.CharField(max_length=100, blank=True)
    center_crop = models.BooleanField(default=DEFAULTS["center_crop"])
    random_flip = models.BooleanField(default=DEFAULTS["random_flip"])
    train_convolutions = models.BooleanField(
        default=DEFAULTS["train_convolutions"],
        help_text="Also train the UNet's ResNet convolutions (conv1, conv2), not only its "
                  "attention: what a new shape needs.")
    checkpoint_every = models.PositiveIntegerField(
        default=DEFAULTS["checkpoint_every"], help_text="Steps between checkpoints; 0: none.")
    validation_prompt = models.CharField(
        max_length=500, blank=True,
        help_text="Empty: the trigger word and the first image's caption.")

    # Where it stands (and LeasedWork's status, progress, worker, attempts, error...).
    current_step = models.PositiveIntegerField(default=0)
    losses = models.JSONField(default=list, blank=True,
                              help_text="[[step, mean loss], ...], one point per step or "
                                        "per N steps for long runs.")
    log_tail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    # The output.
    lora = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", limit_choices_to={"kind": "lora"})
    kohya_file = models.FileField(max_length=255, blank=True,
                                  help_text="The LoRA in kohya format (A1111, ComfyUI).")
    validation_album = models.ForeignKey(Album, null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("see_all_runs", "Can see and cancel every user's training runs")]
        indexes = [models.Index(fields=["owner", "created_at", "id"], name="run_owner_newest")]

    def __str__(self):
        return f"{self.name} (run {self.pk})"

    def get_absolute_url(self):
        return reverse("training_detail", args=[self.pk])

    def trainer_config(self):
        """The trainer's TrainingConfig for this run."""
        from .trainer import TrainingConfig

        return TrainingConfig(
            rank=self.rank,
            alpha=self.alpha,
            learning_rate=self.learning_rate,
            steps=self.steps,
            batch_size=self.batch_size,
            gradient_accumulation=self.gradient_accumulation,
            resolution=self.resolution,
            seed=self.seed,
            trigger_word=self.trigger_word,
            center_crop=self.center_crop,
            random_flip=self.random_flip,
            train_convolutions=self.train_convolutions,
            checkpoint_every=self.checkpoint_every,
            validation_prompt=self.validation_prompt,
            loss_every=-(-self.steps // MAX_LOSS_POINTS),  # ceil: at most ~500 points
        )

    def training_images(self):
        """The album's images in album order, each with `caption_text` (its newest caption)."""
        if self.album is None:
            return Image.objects.none()
        return (Image.objects.filter(album_entries__album=self.album).with_caption()
                .order_by("album_entries__position", "album_entries__id"))

    def prompt_for_validation(self):
        """The validation prompt, else the trigger word and the first image's caption:
        what the first image was trained with (the trainer's build_captions)."""
        from .trainer import Example, build_captions

        if self.validation_prompt:
            return self.validation_prompt
        first = self.training_images().first()
        (trained,) = build_captions([Example("first", first.caption if first else "")],
                                    self.trigger_word)
        return trained or "a picture"

    def validation_images(self):
        """The validation images as (without the LoRA, with it) pairs."""
        if self.validation_album_id is None:
            return []
        images = list(Image.objects.filter(album_entries__album_id=self.validation_album_id)
                      .order_by("album_entries__position", "album_entries__id"))
        return [tuple(images[i:i + 2]) for i in range(0, len(images) - 1, 2)]

    # The run's folder on the worker's disk.

    @property
    def directory(self):
        return settings.IMAGINEER_TRAINING_DIR / f"run-{self.pk}"

    @property
    def checkpoint_dir(self):
        return self.directory / "checkpoints"

    def has_checkpoint(self):
        return self.checkpoint_dir.is_dir() and any(self.checkpoint_dir.glob("checkpoint-*"))

    def delete_files(self):
        """Remove the run's folder (checkpoints, working files) from this machine."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # State changes beyond LeasedWork's (start, beat, fail, cancel, requeue): each a
    # conditional UPDATE that the row's status, and the worker holding it, decide.

    def ended(self):
        Counter.add("training_runs_finished", status=self.status)

    def start(self, worker):
        """A worker takes a queued run; a second attempt keeps the time it first started."""
        return super().start(worker, started_at=Coalesce(F("started_at"), timezone.now()))

    def record_progress(self, worker, *, current_step, losses, log_tail, finishing=False):
        """Save the training state and renew the lease. False once the run is no longer
        this worker's: cancelled, or given to another worker.

        `finishing`: the worker's last word on an attempt, also saved after a cancel.
        """
        statuses = [self.Status.RUNNING, self.Status.CANCELLED] if finishing \
            else [self.Status.RUNNING]
        # Training is most of the work; the LoRA and the validation images are the rest.
        return self._transition(statuses, held_by=worker, current_step=current_step,
                                progress=0.95 * min(current_step / self.steps, 1.0),
                                losses=losses, log_tail=log_tail,
                                heartbeat_at=timezone.now())

    def finish(self, worker, *, lora, kohya_file, validation_album, log_tail):
        return self._transition([self.Status.RUNNING], held_by=worker,
                                status=self.Status.SUCCEEDED, progress=1.0,
                                finished_at=timezone.now(), lora=lora, kohya_file=kohya_file,
                                validation_album=validation_album, log_tail=log_tail)

    def retry(self):
        """Queue a failed or cancelled run again, with a fresh budget of attempts. It
        resumes from its last checkpoint when it has one."""
        return self._transition([self.Status.FAILED, self.Status.CANCELLED],
                                any_worker=True, status=self.Status.QUEUED, worker="",
                                heartbeat_at=None, finished_at=None, error="", attempts=0)


def with_loss(losses, step, loss):
    """The loss history with (step, loss) recorded. Keyed by step: a resumed run trains
    the steps after its last checkpoint again, and their new losses replace the old."""
    kept = [point for point in losses if point[0] < step]
    kept.append([step, round(float(loss), 6)])
    return kept
