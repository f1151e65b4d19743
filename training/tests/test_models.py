"""TrainingRun's state changes: each a conditional update that one side wins."""

import pytest

from training.models import TrainingRun, with_loss

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status


@pytest.fixture
def run(make_album, start_run):
    return TrainingRun.objects.get(pk=start_run(make_album(1))["id"])


def test_it_starts_a_queued_run_once(run):
    assert run.start("host:1")
    assert (run.status, run.worker, run.attempts) == (Status.RUNNING, "host:1", 1)
    first_start = run.started_at
    assert first_start is not None

    assert not TrainingRun.objects.get(pk=run.pk).start("host:2")
    assert TrainingRun.objects.get(pk=run.pk).worker == "host:1"

    # A second attempt keeps the time the run first started.
    assert run.requeue() and run.start("host:3")
    run.refresh_from_db()
    assert (run.attempts, run.started_at) == (2, first_start)


def test_it_records_progress_only_for_the_worker_that_holds_the_run(run):
    run.start("host:1")

    assert run.record_progress("host:1", current_step=3, losses=[[1, 0.5]], log_tail="a")
    assert not run.record_progress("host:2", current_step=4, losses=[], log_tail="b")
    run.refresh_from_db()
    assert (run.current_step, run.losses, run.log_tail) == (3, [[1, 0.5]], "a")
    assert run.progress == pytest.approx(0.95 * 3 / run.steps)


def test_it_tells_the_worker_when_the_run_was_cancelled(run):
    run.start("host:1")
    assert TrainingRun.objects.get(pk=run.pk).cancel()

    assert not run.beat("host:1")
    assert not run.record_progress("host:1", current_step=2, losses=[], log_tail="")
    # The worker's last word is still saved after a cancel.
    assert run.record_progress("host:1", current_step=2, losses=[], log_tail="stopped",
                               finishing=True)
    run.refresh_from_db()
    assert (run.status, run.log_tail) == (Status.CANCELLED, "stopped")
    assert not run.finish("host:1", lora=None, kohya_file="", validation_album=None,
                          log_tail="")


def test_it_requeues_a_run_until_it_has_used_its_attempts(run, settings):
    settings.IMAGINEER_TRAINING_MAX_ATTEMPTS = 2
    run.start("host:1")
    assert run.requeue()
    assert (run.status, run.worker) == (Status.QUEUED, "")
    run.start("host:2")

    assert not run.requeue()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.error == "the worker stopped 2 times while running this training"


def test_it_retries_only_failed_and_cancelled_runs_with_fresh_attempts(run):
    assert not run.retry()
    run.start("host:1")
    assert not run.retry()
    run.fail("boom", worker="host:1")
    assert run.retry()
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error, run.finished_at) == (Status.QUEUED, 0, "", None)


def test_it_keys_losses_by_step_so_a_resumed_run_replaces_them():
    losses = []
    for step, loss in [(1, 1.0), (2, 0.9), (3, 0.8)]:
        losses = with_loss(losses, step, loss)
    assert with_loss(losses, 2, 0.7) == [[1, 1.0], [2, 0.7]]


def test_it_downsamples_the_loss_history_of_long_runs(run):
    assert run.trainer_config().loss_every == 1
    run.steps = 20_000
    assert run.trainer_config().loss_every == 40


def test_it_defaults_the_validation_prompt_to_what_the_first_image_trained_with(run):
    assert run.prompt_for_validation() == "chk, a red checkerboard 0"
    run.trigger_word = "checkerboard"  # the caption names it: trained as written
    assert run.prompt_for_validation() == "a red checkerboard 0"
    run.validation_prompt = "chk on a table"
    assert run.prompt_for_validation() == "chk on a table"
