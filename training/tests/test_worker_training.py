"""Training runs on a real training worker: end to end, cancelled, killed and resumed."""

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from imagineer.testing import wait_for
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

Status = TrainingRun.Status


def run_state(run_id):
    return TrainingRun.objects.get(pk=run_id)


def wait_status(run_id, *statuses, timeout=300):
    return wait_for(lambda: (run := run_state(run_id)).status in statuses and run,
                    timeout=timeout, message=f"run {run_id} to be {' or '.join(statuses)}")


def pixels(image):
    with default_storage.open(image.file.name, "rb") as file:
        return PILImage.open(file).convert("RGB").tobytes()


def test_it_trains_a_lora_from_an_album_that_generation_then_uses(
        training_worker, start_worker, api_as, editor, make_album, start_run, training_dir):
    from generation.models import ModelVersion
    from training.trainer import read_lora_metadata

    training_worker()
    start_worker()  # the default cluster runs the generation job
    album = make_album(4)
    submitted = start_run(album, steps=6, checkpoint_every=2)

    run = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED)

    assert run.status == Status.SUCCEEDED, run.error + run.log_tail
    assert (run.current_step, run.progress, run.attempts) == (6, 1.0, 1)
    assert [step for step, _ in run.losses] == [1, 2, 3, 4, 5, 6]
    assert "Training on 4 images at 64 px" in run.log_tail
    # The LoRA: registered, stored through default_storage, with its hash and metadata.
    lora = run.lora
    assert (lora.kind, lora.family, lora.trigger_words) == ("lora", "sd15", "chk")
    assert lora.source == "" and lora.file.name == f"models/{lora.sha256}.safetensors"
    path = default_storage.path(lora.file.name)
    from generation.engine.lora import file_sha256

    assert file_sha256(path) == lora.sha256
    assert read_lora_metadata(path)["steps"] == "6"
    assert lora.metrics["steps"] == 6 and lora.metrics["final_loss"] == run.losses[-1][1]
    assert read_lora_metadata(default_storage.path(run.kohya_file.name))["rank"] == "4"
    # The validation album: the same seed without, then with the LoRA.
    pairs = run.validation_images()
    assert len(pairs) == 1
    without_lora, with_lora = pairs[0]
    assert (without_lora.width, with_lora.width) == (64, 64)
    assert with_lora.params == {"training_run": run.pk, "lora": lora.pk, "seed": 7}
    assert without_lora.params["lora"] is None
    assert run.validation_album.owner == editor
    # The checkpoints are gone once the run succeeded (the worker deletes them just after
    # it marks the run succeeded, so that a run cancelled at the last moment keeps them).
    wait_for(lambda: not run.directory.exists(), timeout=30, message="the run's folder gone")

    body = api_as(editor).get(f"/api/training-runs/{run.pk}/").json()
    assert body["lora"] == lora.pk and body["status"] == "succeeded"

    # Generation uses the new LoRA.
    response = api_as(editor).post("/api/jobs/", {
        "prompt": "chk, a red checkerboard", "width": 64, "height": 64, "steps": 4,
        "seed": 3, "loras": [{"id": lora.pk, "weight": 1.0}]}, format="json")
    assert response.status_code == 201, response.content
    from generation.models import Job

    job = wait_for(lambda: (job := Job.objects.get(pk=response.json()["id"])).is_finished and job,
                   timeout=300, message="the generation job to end")
    assert job.status == "succeeded", job.error
    assert job.images.count() == 1
    assert ModelVersion.objects.loras().count() == 1


def test_it_cancels_a_running_run(training_worker, api_as, editor, make_album, start_run):
    training_worker()
    submitted = start_run(make_album(), steps=5000, checkpoint_every=0)
    wait_for(lambda: run_state(submitted["id"]).current_step >= 3, timeout=240,
             message="the run to be under way")

    response = api_as(editor).post(f"/api/training-runs/{submitted['id']}/cancel/")

    assert response.status_code == 200
    wait_for(lambda: "Stopped: the run was cancelled" in run_state(submitted["id"]).log_tail,
             timeout=120, message="the worker to stop the run")
    run = run_state(submitted["id"])
    assert run.status == Status.CANCELLED
    assert 3 <= run.current_step < 5000
    assert run.lora is None and run.validation_album is None
    from generation.models import ModelVersion

    assert not ModelVersion.objects.loras().exists()


def test_it_resumes_from_the_checkpoint_after_the_worker_is_killed(
        training_worker, make_album, start_run):
    # 200 steps: the kill comes at step 50 or just after, 150 steps before the end.
    steps = 200
    worker = training_worker()
    submitted = start_run(make_album(), steps=steps, checkpoint_every=20)
    wait_for(lambda: run_state(submitted["id"]).current_step >= 50, timeout=300,
             message="the run to pass two checkpoints")

    worker.kill()  # kill -9 of the whole cluster, mid-run
    before = run_state(submitted["id"])
    assert before.status == Status.RUNNING
    losses_before = dict(before.losses)

    training_worker()  # a new worker reclaims the run and runs it again
    run = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED)

    assert run.status == Status.SUCCEEDED, run.error + run.log_tail
    assert run.attempts == 2
    resumed = [line for line in run.log_tail.splitlines() if "Resumed from the checkpoint" in line]
    assert len(resumed) == 1
    resumed_at = int(resumed[0].rsplit(" ", 1)[1])
    # It went on from the last checkpoint written before the kill, not from 0.
    assert resumed_at % 20 == 0 and resumed_at >= before.current_step - 20 >= 30
    assert run.current_step == steps
    losses = dict(run.losses)
    assert sorted(losses) == list(range(1, steps + 1))
    # The steps up to the checkpoint kept the losses of the first attempt.
    for step in range(1, min(resumed_at, max(losses_before)) + 1):
        assert losses[step] == losses_before[step]
