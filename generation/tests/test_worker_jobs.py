"""End to end: jobs submitted through the API and run by a real qcluster worker on the
tiny demo model. These tests see committed rows only (the worker is another process)."""

import io
import json

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import OrmQ, Task
from PIL import Image as PILImage

from albums.models import Image
from generation.models import Job, Status
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# The demo model's guidance for pictures that follow the prompt (docs/performance.md).
MEANING_GUIDANCE = 1.5


def job_state(job_id):
    return Job.objects.get(pk=job_id)


def wait_status(job_id, *statuses, timeout=120):
    return wait_for(lambda: (job := job_state(job_id)).status in statuses and job,
                    timeout=timeout, message=f"job {job_id} to be {'/'.join(statuses)}")


def test_it_runs_a_job_to_a_png_that_sd_parsers_reads(worker, quick_job, api_as, viewer,
                                                      demo_base):
    from sd_parsers import ParserManager

    submitted = quick_job(prompt="a red square", negative_prompt="blurry", num_images=2)
    assert submitted["status"] == "queued"
    job = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED)
    assert job.status == Status.SUCCEEDED, job.error
    assert job.progress == 1.0
    assert job.started_at and job.finished_at and job.worker

    detail = api_as(viewer).get(f"/api/jobs/{job.pk}/").json()
    assert detail["status"] == "succeeded"
    assert len(detail["images"]) == 2
    image = Image.objects.get(pk=detail["images"][0]["id"])
    assert image.source == Image.Source.GENERATED
    assert image.prompt == "a red square"
    assert image.params["seed"] == 1234
    assert image.created_by == viewer

    with default_storage.open(image.file.name, "rb") as f:
        data = f.read()
    info = ParserManager().parse(PILImage.open(io.BytesIO(data)))
    assert info is not None, "sd-parsers must read the parameters chunk"
    assert info.full_prompt == "a red square"
    assert info.full_negative_prompt == "blurry"
    sampler = info.samplers[0]
    assert sampler.parameters["seed"] == "1234"
    assert sampler.parameters["steps"] == "4"
    assert sampler.parameters["cfg_scale"] == "5"
    assert sampler.model.name == "demo" and sampler.model.hash == demo_base.sha256[:10]
    assert info.metadata["Size"] == "64x64"

    from django.test import Client

    browser = Client()
    browser.force_login(viewer)
    page = browser.get(f"/images/{image.pk}/").content.decode()
    assert f'action="/jobs/{job.pk}/retry/"' in page, "the image page offers a remix"


def test_it_cancels_a_queued_job_without_running_it(start_worker, quick_job, api_as, viewer):
    submitted = quick_job()
    response = api_as(viewer).post(f"/api/jobs/{submitted['id']}/cancel/")
    assert response.json()["status"] == "cancelled"
    start_worker()
    follow_up = quick_job(seed=5)
    wait_status(follow_up["id"], Status.SUCCEEDED)
    job = job_state(submitted["id"])
    assert job.status == Status.CANCELLED
    assert job.started_at is None and not job.images.exists()


def test_it_stops_a_running_job_at_the_next_step_and_goes_on(worker, quick_job, api_as,
                                                              viewer):
    # Many steps at a larger size: long enough to cancel mid-run.
    submitted = quick_job(steps=150)
    wait_for(lambda: job_state(submitted["id"]).progress > 0, timeout=120,
             message="the job to make progress")
    api_as(viewer).post(f"/api/jobs/{submitted['id']}/cancel/")
    after = quick_job(seed=99)
    wait_status(after["id"], Status.SUCCEEDED)
    job = job_state(submitted["id"])
    assert job.status == Status.CANCELLED
    assert 0 < job.progress < 0.95
    assert not job.images.exists()


def test_it_finishes_a_job_exactly_once_after_the_worker_is_killed(worker, quick_job):
    submitted = quick_job(steps=150, num_images=2)
    wait_for(lambda: job_state(submitted["id"]).progress > 0.05, timeout=120,
             message="the job to be well under way")
    worker.kill()  # kill -9 of the whole cluster, mid-job
    assert job_state(submitted["id"]).status == Status.RUNNING
    worker.start()
    job = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED, timeout=600)
    assert job.status == Status.SUCCEEDED, job.error
    assert job.attempts == 2
    assert job.images.count() == 2
    # No duplicate images: exactly the two this job made exist.
    assert Image.objects.count() == 2
    assert Job.objects.filter(status=Status.RUNNING).count() == 0


def test_it_runs_the_jobs_whose_tokens_a_killed_worker_took(start_worker, quick_job,
                                                           settings):
    # A cluster killed with kill -9 leaves the tokens it had fetched locked in the broker
    # until `retry`. The one token left must serve every queued job, in one task.
    from datetime import timedelta

    settings.IMAGINEER_MAX_ACTIVE_JOBS = settings.IMAGINEER_JOBS_PER_MINUTE = 50
    ids = [quick_job(seed=n)["id"] for n in range(3)]
    tokens = list(OrmQ.objects.order_by("id").values_list("id", flat=True))
    assert len(tokens) == 3
    OrmQ.objects.filter(pk__in=tokens[1:]).update(lock=timezone.now() + timedelta(hours=1))
    start_worker()
    for job_id in ids:
        assert wait_status(job_id, Status.SUCCEEDED, Status.FAILED).status == Status.SUCCEEDED

    def results():  # saved by the cluster after the task returns: wait for all of them
        ran = [task.result for task in Task.objects.filter(func="generation.tasks.run_next_job")
               if task.result.startswith("ran jobs")]
        return sum(result.count(",") + 1 for result in ran) == len(ids) and ran

    assert f"ran jobs {ids}" in wait_for(results, timeout=30, message="the tasks' results")


def test_housekeeping_gives_queued_jobs_a_token_when_none_waits(quick_job):
    from generation.tasks import housekeeping

    quick_job()
    OrmQ.objects.all().delete()  # lost: a process died between commit and enqueue

    housekeeping()
    housekeeping()  # a token waits now: no second one

    assert OrmQ.objects.count() == 1
    assert OrmQ.objects.get().func() == "generation.tasks.run_next_job"


def test_it_marks_a_failing_job_failed_and_runs_the_next(worker, quick_job, demo_base,
                                                         demo_loras, tmp_path):
    import shutil

    from generation.models import ModelVersion

    copy = tmp_path / "doomed.safetensors"
    shutil.copy(demo_loras[0], copy)
    lora = ModelVersion.from_source(name="doomed", kind="lora", source=str(copy)).register()
    copy.write_bytes(b"not a safetensors file any more")  # broken after registration
    broken = quick_job(loras=[{"id": lora.pk, "weight": 1.0}])
    fine = quick_job(seed=7)
    job = wait_status(broken["id"], Status.FAILED, Status.SUCCEEDED)
    assert job.status == Status.FAILED
    assert job.error
    assert wait_status(fine["id"], Status.SUCCEEDED, Status.FAILED).status == Status.SUCCEEDED


def test_it_serves_users_round_robin(start_worker, quick_job, make_user, settings):
    settings.IMAGINEER_MAX_ACTIVE_JOBS = settings.IMAGINEER_JOBS_PER_MINUTE = 50
    alice, bob = make_user("alice"), make_user("bob")
    alice_jobs = [quick_job(alice, seed=n)["id"] for n in range(20)]
    bob_job = quick_job(bob, seed=100)["id"]
    start_worker()
    wait_status(bob_job, Status.SUCCEEDED)
    started = list(Job.objects.filter(started_at__isnull=False).order_by("started_at", "id")
                   .values_list("id", flat=True))
    assert bob_job in started[:2], f"bob's job started at position {started.index(bob_job)}"
    Job.objects.filter(pk__in=alice_jobs).update(status=Status.CANCELLED)


def test_it_hot_swaps_loras_and_loads_the_base_once(worker, quick_job, make_lora):
    first, second = make_lora(0), make_lora(1)
    plain = quick_job(seed=42)
    with_first = quick_job(seed=42, loras=[{"id": first.pk, "weight": 1.0}])
    with_second = quick_job(seed=42, loras=[{"id": second.pk, "weight": 1.0}])
    plain_again = quick_job(seed=42)
    pixels = []
    for submitted in (plain, with_first, with_second, plain_again):
        job = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED)
        assert job.status == Status.SUCCEEDED, job.error
        image = job.images.get()
        with default_storage.open(image.file.name, "rb") as f:
            pixels.append(PILImage.open(f).convert("RGB").tobytes())
    assert pixels[1] != pixels[0] and pixels[2] != pixels[0] and pixels[1] != pixels[2]
    assert pixels[3] == pixels[0], "switching LoRAs off gives the plain image back"
    loads = [json.loads(line)["pipeline_loads"] for line in worker.log().splitlines()
             if '"pipeline_loads"' in line]
    assert loads and max(loads) == 1, "the base model loads once per worker"


# Backend-neutral (conftest.py): it checks the pictures' meaning; the job's rows are those of
# test_it_runs_a_job_to_a_png_that_sd_parsers_reads, which runs on both databases.
@pytest.mark.backend_neutral
def test_the_worker_draws_what_the_prompt_asks(worker, quick_job):
    """The demo model draws its world, and the worker hands its prompt to it: the judge
    reads the colours asked for (a swapped prompt, a lost negative or a broken pipeline
    would not give them); and the same prompt, seed and parameters give the same pixels."""
    from generation.engine.judge import judge

    asks = [("a red circle on a white background", "red", "white"),
            ("a yellow square on a blue background", "yellow", "blue"),
            ("a white triangle on a black background", "white", "black")]
    jobs = [quick_job(prompt=prompt, steps=20, guidance_scale=MEANING_GUIDANCE, seed=1)
            for prompt, _, _ in asks]
    # The first prompt again, same seed and parameters, as a job of its own.
    again = quick_job(prompt=asks[0][0], steps=20, guidance_scale=MEANING_GUIDANCE, seed=1)
    drawn = []
    for submitted, (prompt, colour, background) in zip(jobs, asks, strict=True):
        job = wait_status(submitted["id"], Status.SUCCEEDED, Status.FAILED, timeout=300)
        assert job.status == Status.SUCCEEDED, job.error
        with default_storage.open(job.images.get().file.name, "rb") as f:
            picture = PILImage.open(f).convert("RGB")
        drawn.append(picture)
        reading = judge(picture)
        assert (reading.colour, reading.background) == (colour, background), (prompt, reading)
    # Determinism: the same seed and parameters give the same pixels.
    job = wait_status(again["id"], Status.SUCCEEDED, Status.FAILED, timeout=300)
    assert job.status == Status.SUCCEEDED, job.error
    with default_storage.open(job.images.get().file.name, "rb") as f:
        assert PILImage.open(f).convert("RGB").tobytes() == drawn[0].tobytes()
