"""training.tasks in this process: failures, retries that resume, reclaiming, housekeeping."""

import os
import socket
import subprocess
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import OrmQ

from training.models import TrainingRun
from training.tasks import housekeeping, reclaim_stale_runs, run_training

pytestmark = pytest.mark.django_db(transaction=True)

Status = TrainingRun.Status


@pytest.fixture
def run(make_album, start_run):
    return TrainingRun.objects.get(pk=start_run(make_album(2))["id"])


def dead_pid():
    process = subprocess.Popen(["true"])  # noqa: S607 (`true` from PATH, for a pid that is dead)
    process.wait()
    return process.pid


def test_it_fails_a_run_whose_images_went_missing_after_submit(run):
    for image in run.album.images.all():
        default_storage.delete(image.file.name)

    assert run_training(run.pk) == f"training run {run.pk} failed"

    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error == "ValueError: examples: there is no image to train on"
    assert "warning: skipped image" in run.log_tail
    assert "Failed: ValueError" in run.log_tail
    assert not (run.directory / "work").exists()


def test_it_runs_only_a_queued_run(run):
    run.cancel()

    assert run_training(run.pk) == f"training run {run.pk} is not queued"
    assert TrainingRun.objects.get(pk=run.pk).attempts == 0


def test_it_resumes_a_retried_run_from_its_checkpoint(make_album, start_run, demo_model_dir):
    from training.submit import retry_run
    from training.tasks import fetch_examples
    from training.trainer import TrainingCancelled, train_lora

    run = TrainingRun.objects.get(pk=start_run(make_album(2), steps=6)["id"])
    # An earlier attempt, stopped after step 4, left its checkpoint; the run failed.
    examples = fetch_examples(run, run.directory / "first", print)
    steps = []
    with pytest.raises(TrainingCancelled):
        train_lora(demo_model_dir, examples, run.directory / "out", run.trainer_config(),
                   checkpoint_dir=run.checkpoint_dir, on_progress=lambda s, t: steps.append(s),
                   should_cancel=lambda: steps[-1] >= 4)
    TrainingRun.objects.filter(pk=run.pk).update(status=Status.FAILED)

    retry_run(TrainingRun.objects.get(pk=run.pk))
    assert run_training(run.pk) == f"training run {run.pk} succeeded"

    run.refresh_from_db()
    assert (run.status, run.current_step, run.attempts) == (Status.SUCCEEDED, 6, 1)
    assert "Resumed from the checkpoint at step 4" in run.log_tail
    # The checkpoint's history (steps 1-4, which no attempt wrote to the row), then this
    # attempt's steps: the chart is whole.
    assert [step for step, _ in run.losses] == [1, 2, 3, 4, 5, 6]
    assert not run.directory.exists()


def test_it_reclaims_runs_of_dead_workers_and_of_silent_ones(make_album, start_run):
    album = make_album(1)
    runs = [TrainingRun.objects.get(pk=start_run(album)["id"]) for _ in range(3)]
    here = socket.gethostname()
    dead, alive, silent = runs
    dead.start(f"{here}:{dead_pid()}")
    alive.start(f"{here}:{os.getpid()}")
    silent.start("elsewhere:123")
    TrainingRun.objects.filter(pk=silent.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1))
    OrmQ.objects.all().delete()

    assert reclaim_stale_runs() == 2

    statuses = dict(TrainingRun.objects.values_list("pk", "status"))
    assert statuses == {dead.pk: Status.QUEUED, alive.pk: Status.RUNNING,
                        silent.pk: Status.QUEUED}
    assert sorted(task.task["args"][0] for task in OrmQ.objects.all()) == \
        sorted([dead.pk, silent.pk])


def test_it_gives_a_queued_run_a_task_when_none_waits(run):
    OrmQ.objects.all().delete()  # as if the process died between commit and enqueue

    housekeeping()
    housekeeping()  # a task waits now: no second one

    assert [task.task["args"] for task in OrmQ.objects.all()] == [(run.pk,)]
