"""django-q2 entry points for training: the thin seam between TrainingRun rows and the
trainer (training/trainer.py).

Runs go to their own cluster, "training", so that a run of hours never blocks generation.
Start its worker beside the default one:

    Q_CLUSTER_NAME=training python manage.py qcluster

`run_training(run_id)` takes the run with a conditional update (so a run trains once
however many tasks name it), copies the album's images to the run's folder, trains with a
checkpoint every N steps, then, all or nothing: registers the LoRA (a ModelVersion whose
file is stored through default_storage, like an uploaded LoRA), stores the kohya copy and
the validation images (with and without the LoRA, same seed) in an album linked to the run,
and marks the run succeeded.

A worker that dies mid-run (kill -9, out of memory, the cluster's timeout) leaves its run
"running". `reclaim_stale_runs` gives such runs back to the queue when a worker starts and
every minute; the next attempt resumes from the run's last checkpoint.
"""

import logging
import shutil
import threading
import time
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from albums.ingest import atomic_ingest, store_generated
from albums.models import Album
from core.storage import fetch
from generation.models import ModelVersion
from generation.validation import generation_defaults
from workers.leases import Heartbeat, NoLongerOurs, lease_interval, reclaim, worker_name

from .models import LOG_LINES, TrainingRun, with_loss

log = logging.getLogger(__name__)

CLUSTER = "training"
# Progress, losses and the log tail are written at most this often (seconds).
PROGRESS_INTERVAL = 1.0


def enqueue_run(run):
    async_task("training.tasks.run_training", run.pk, cluster=CLUSTER,
               task_name=f"training run {run.pk}", group="training")


class Tracker:
    """The run's state during an attempt, kept in memory and written to its row at most
    every PROGRESS_INTERVAL seconds. Each write renews the lease and tells whether the run
    is still this worker's: if not (a cancel), training stops before its next step."""

    def __init__(self, run, worker):
        self.run = run
        self.worker = worker
        self.current_step = run.current_step
        self.losses = list(run.losses)
        self.lines = run.log_tail.splitlines()
        self.stopped = False
        self.last_write = 0.0
        self.lock = threading.Lock()  # the heartbeat thread writes too

    # The trainer's callbacks.

    def on_progress(self, step, total):
        # On a resume the first call names the checkpoint's step: losses recorded after it
        # by the attempt that died are trained again, and go.
        self.current_step = step
        self.losses = [point for point in self.losses if point[0] <= step]
        self.save_if_due()

    def on_loss(self, step, loss):
        self.losses = with_loss(self.losses, step, loss)

    def on_log(self, line):
        log.info("training run %s: %s", self.run.pk, line)
        self.lines = [*self.lines, f"{timezone.localtime():%Y-%m-%d %H:%M:%S} {line}"]
        self.lines = self.lines[-LOG_LINES:]
        self.save_if_due()

    def should_cancel(self):
        self.save_if_due()
        return self.stopped

    # Writing.

    def save_if_due(self):
        if time.monotonic() - self.last_write >= PROGRESS_INTERVAL:
            self.save()

    def text(self):
        return "\n".join(self.lines)

    def save(self, finishing=False):
        with self.lock:
            self.last_write = time.monotonic()
            if not self.run.record_progress(self.worker, current_step=self.current_step,
                                            losses=self.losses, log_tail=self.text(),
                                            finishing=finishing):
                self.stopped = True
        return not self.stopped

    def beat(self):
        with self.lock:
            if not self.run.beat(self.worker):
                self.stopped = True


def run_training(run_id):
    worker = worker_name()
    run = (TrainingRun.objects.select_related("base_model", "album", "owner")
           .filter(pk=run_id).first())
    if run is None or not run.start(worker):
        return f"training run {run_id} is not queued"
    tracker = Tracker(run, worker)
    work = run.directory / "work"
    shutil.rmtree(work, ignore_errors=True)  # left by an attempt that died
    try:
        with Heartbeat(tracker.beat, lease_interval()):
            return _run(run, tracker, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(run, tracker, work):
    from .trainer import TrainingCancelled, train_lora

    tracker.on_log(f"Attempt {run.attempts} on worker {tracker.worker}")
    try:
        examples = fetch_examples(run, work / "images", tracker.on_log)
        result = train_lora(
            run.base_model.engine_source(), examples, work / "lora", run.trainer_config(),
            on_progress=tracker.on_progress, on_loss=tracker.on_loss, on_log=tracker.on_log,
            should_cancel=tracker.should_cancel, checkpoint_dir=run.checkpoint_dir,
            base_model_name=run.base_model.name,
        )
        # The trainer's history is whole: a resumed run's steps before its checkpoint come
        # from the checkpoint, also those whose throttled write the dead worker never made.
        tracker.losses = [[step, round(float(loss), 6)] for step, loss in result.losses]
        pictures = draw_validation_images(run, result, tracker.on_log)
        tracker.on_log("Registering the LoRA and storing the validation images")
        if not tracker.save():
            raise NoLongerOurs
        store_outputs(run, tracker, result, pictures)
    except (TrainingCancelled, NoLongerOurs):
        tracker.on_log("Stopped: the run was cancelled")
        tracker.save(finishing=True)
        return f"training run {run.pk} cancelled"
    except Exception as exc:
        log.exception("training run %s failed", run.pk)
        tracker.on_log(f"Failed: {exc.__class__.__name__}: {exc}")
        tracker.save(finishing=True)
        run.fail(f"{exc.__class__.__name__}: {exc}", worker=tracker.worker)
        return f"training run {run.pk} failed"
    run.delete_files()  # the checkpoints are of no more use
    return f"training run {run.pk} succeeded"


def fetch_examples(run, folder, on_log):
    """Copy the album's images to a local folder through the storage (core.storage);
    each becomes a trainer Example with the image's newest caption."""
    from .trainer import Example

    folder.mkdir(parents=True)
    examples = []
    for image in run.training_images():
        path = folder / f"{image.pk}{Path(image.file.name).suffix}"
        try:
            fetch(image.file.name, path, sha256=image.sha256)
        except OSError as exc:  # a missing or changed file costs one image, not the run
            on_log(f"warning: skipped image {image.pk}: {exc}")
            continue
        examples.append(Example(path, image.caption))
    return examples


def draw_validation_images(run, result, on_log):
    """(prompt, image without the LoRA, image with it), at the run's seed and resolution."""
    from generation.engine.device import free_memory

    from .trainer import generate_validation_images

    free_memory()  # what training held (on a GPU, its cached blocks) before a new pipeline

    prompt = run.prompt_for_validation()
    defaults = generation_defaults()
    on_log(f"Drawing the validation images (seed {run.seed}): {prompt}")
    without_lora, with_lora = generate_validation_images(
        run.base_model.engine_source(), result.lora_path, prompt, seed=run.seed,
        size=run.resolution, steps=defaults["steps"],
        guidance_scale=defaults["guidance_scale"],
    )
    return prompt, without_lora, with_lora


def store_outputs(run, tracker, result, pictures):
    """Register the LoRA, store its kohya copy and the validation album, and end the run
    succeeded: all of it or, if anything fails (or the run was cancelled), none of it."""
    stored = []
    try:
        with atomic_ingest():  # also removes the validation images' files on failure
            lora = register_lora(run, result)
            stored.append(lora.file.name)
            with open(result.kohya_path, "rb") as kohya:
                kohya_name = default_storage.save(
                    f"training/run-{run.pk}/{result.kohya_path.name}", File(kohya))
            stored.append(kohya_name)
            album = store_validation_album(run, lora, pictures)
            tracker.on_log(f"Done: the LoRA is model {lora.pk} ({lora.short_hash})")
            if not run.finish(tracker.worker, lora=lora, kohya_file=kohya_name,
                              validation_album=album, log_tail=tracker.text()):
                raise NoLongerOurs
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def register_lora(run, result):
    """The trained LoRA (diffusers format) as ModelVersion(kind=lora): checked and stored
    through default_storage under its sha256, like an uploaded LoRA."""
    final_loss = round(result.losses[-1][1], 6) if result.losses else None
    with open(result.lora_path, "rb") as file:
        lora = ModelVersion.from_upload(
            File(file),
            name=run.name,
            family=run.base_model.family,
            version=f"run {run.pk}",
            trigger_words=run.trigger_word,
            # Not the album's name: every user sees the LoRA, not every user the album.
            description=f"Trained by training run {run.pk} on {result.metadata['dataset_size']}"
                        f" images with {run.base_model}.",
            metrics={"final_loss": final_loss, "steps": result.steps_done,
                     "training_run": run.pk, "rank": run.rank, "alpha": run.alpha,
                     "resolution": run.resolution,
                     "dataset_size": int(result.metadata["dataset_size"])},
            created_by=run.owner,
        )
        return lora.register()


def store_validation_album(run, lora, pictures):
    """A new album holding the validation images: without the LoRA, then with it."""
    from generation.engine.metadata import png_bytes
    from generation.engine.params import GenerationParams

    prompt, without_lora, with_lora = pictures
    defaults = generation_defaults()
    album = Album.objects.create(
        name=f"{run.name}: validation (run {run.pk})", owner=run.owner,
        description=f"Validation images of training run {run.pk}, seed {run.seed}: "
                    f"without the LoRA, then with {lora.name}.",
    )
    images = []
    for picture, loras in ((without_lora, []), (with_lora, [(lora.name, lora.sha256)])):
        drawn = GenerationParams(prompt, width=picture.width, height=picture.height,
                                 steps=defaults["steps"],
                                 guidance_scale=defaults["guidance_scale"], seed=run.seed)
        text = drawn.parameters_text(sampler="Default", model_name=run.base_model.name,
                                     model_sha256=run.base_model.sha256, loras=loras)
        image, _ = store_generated(
            png_bytes(picture, text), picture,
            filename=f"run-{run.pk}-{'with' if loras else 'without'}-lora.png",
            created_by=run.owner, prompt=prompt,
            params={"training_run": run.pk, "lora": lora.pk if loras else None,
                    "seed": run.seed},
        )
        images.append(image)
    album.add_images(images, by=run.owner)
    return album


def reclaim_stale_runs():
    """Give back running runs whose worker is gone: dead on this host, or silent too long.
    They resume from their last checkpoint; after too many attempts they fail."""
    return reclaim(TrainingRun.objects.all(), requeued=enqueue_run)


def housekeeping():
    """Every minute (a step of workers' housekeeping, on the default cluster: the training
    cluster's one worker may be busy for hours): reclaim runs of dead workers; give queued
    runs a task again when none is waiting and none is running (a process may have died
    between commit and enqueue)."""
    reclaim_stale_runs()
    runs = TrainingRun.objects.all()
    if runs.filter(status=TrainingRun.Status.RUNNING).exists():
        return
    if get_broker(CLUSTER).queue_size():
        return
    for run in runs.filter(status=TrainingRun.Status.QUEUED):
        enqueue_run(run)
