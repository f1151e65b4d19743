"""/metrics: the Prometheus figures, read from the database at each scrape."""

import shutil
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation.models import Batch, Job, ModelVersion, PromptSet, Status
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db

TOKEN = "a-metrics-token-for-tests"  # noqa: S105 (a test's metrics token)


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def token(settings):
    settings.IMAGINEER_METRICS_TOKEN = TOKEN
    return TOKEN


def test_it_is_off_without_a_token(client, db):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_it_needs_the_bearer_token(client, db, token):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert "imagineer_queue_depth" in client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()


def job_params(model, **params):
    return {"prompt": "a red square", "negative_prompt": "", "model": model, "width": 64,
            "height": 64, "steps": 4, "guidance_scale": 5.0, "seed": 1, "scheduler": "pndm",
            "num_images": 1, "loras": [], **params}


def ran(job, seconds, end):
    """Let `job` start and end `seconds` apart, as a worker would have (the clock moved)."""
    job.start("elsewhere:1")
    if end == Status.FAILED:
        job.fail(ValueError("the prompt was too red"))
    elif end == Status.CANCELLED:
        job.cancel()
    else:
        job.finish([])
    finished = timezone.now()
    Job.objects.filter(pk=job.pk).update(started_at=finished - timedelta(seconds=seconds),
                                         finished_at=finished)


def test_it_counts_jobs_runs_and_durations_from_the_database(
        client, token, viewer, editor, admin_user, django_assert_max_num_queries):
    from albums.models import Album
    from training.models import TrainingRun

    model = ModelVersion.objects.create(name="m", kind="base", source="m")
    params = job_params(model)
    single = [Job.create_from(params, owner=user) for user in (viewer, viewer, editor, admin_user)]
    prompt_set = PromptSet.objects.create(name="cards", prompt_template="{card}")
    batch = Batch.objects.create(prompt_set=prompt_set, owner=editor, total=3)
    in_batch = [Job.create_from(params, owner=editor, batch=batch, batch_position=n)
                for n in range(3)]
    ran(single[0], 0.5, Status.SUCCEEDED)
    ran(single[1], 3, Status.SUCCEEDED)
    ran(single[2], 45, Status.FAILED)
    ran(in_batch[0], 700, Status.CANCELLED)
    in_batch[1].start("elsewhere:1")
    in_batch[2].fail("a text, no exception")  # failed while queued: no duration
    album = Album.objects.create(name="set", owner=editor)
    for status in ("running", "queued", "queued", "succeeded"):
        TrainingRun.objects.create(name="r", album=album, base_model=model, owner=editor,
                                   status=status)

    with django_assert_max_num_queries(8):  # a handful of aggregates, not a row each
        metrics = scrape(client)

    def value(name, **labels):
        return metrics.get((name, tuple(sorted(labels.items()))))

    assert value("imagineer_jobs_submitted_total", kind="single", role="viewer") == 2
    assert value("imagineer_jobs_submitted_total", kind="single", role="editor") == 1
    assert value("imagineer_jobs_submitted_total", kind="single", role="admin") == 1
    assert value("imagineer_jobs_submitted_total", kind="batch", role="editor") == 3

    histogram = "imagineer_job_duration_seconds"
    assert value(f"{histogram}_bucket", status="succeeded", le="1.0") == 1
    assert value(f"{histogram}_bucket", status="succeeded", le="5.0") == 2
    assert value(f"{histogram}_count", status="succeeded") == 2
    assert value(f"{histogram}_sum", status="succeeded") == pytest.approx(3.5, abs=0.01)
    assert value(f"{histogram}_bucket", status="failed", le="30.0") == 0
    assert value(f"{histogram}_bucket", status="failed", le="60.0") == 1
    assert value(f"{histogram}_count", status="failed") == 1
    assert value(f"{histogram}_bucket", status="cancelled", le="600.0") == 0
    assert value(f"{histogram}_bucket", status="cancelled", le="+Inf") == 1

    assert value("imagineer_generation_errors_total", error_type="ValueError") == 1
    assert value("imagineer_generation_errors_total", error_type="unknown") == 1
    assert value("imagineer_jobs_active") == 1
    assert value("imagineer_queue_depth", queue="generation") == 1
    assert value("imagineer_queue_depth", queue="training") == 2
    assert value("imagineer_training_runs_active") == 1
    assert value("imagineer_workers_alive", cluster="imagineer") == 0
    assert value("imagineer_workers_alive", cluster="training") == 0


def test_it_keeps_the_class_of_the_error_that_failed_a_job(viewer):
    model = ModelVersion.objects.create(name="m", kind="base", source="m")
    job = Job.create_from(job_params(model), owner=viewer)
    job.start("elsewhere:1")
    assert job.fail(OSError("disk full"), context="saving images failed")
    job.refresh_from_db()
    assert job.error_type == "OSError"
    assert job.error == "saving images failed: OSError: disk full"
    assert job.owner_role == "viewer"


@pytest.mark.django_db(transaction=True)
def test_it_shows_what_a_real_worker_did(start_worker, client, token, quick_job, viewer,
                                         editor, demo_base, demo_loras, tmp_path):
    lora_file = tmp_path / "doomed.safetensors"
    shutil.copy(demo_loras[0], lora_file)
    lora = ModelVersion.from_source(name="doomed", kind="lora", source=str(lora_file)).register()
    lora_file.write_bytes(b"not a safetensors file any more")  # broken after registration
    fine = quick_job(viewer)["id"]
    broken = quick_job(editor, loras=[{"id": lora.pk, "weight": 1.0}])["id"]
    start_worker()
    wait_for(lambda: not Job.objects.filter(pk__in=[fine, broken], status__in=["queued",
             "running"]).exists(), timeout=120, message="both jobs to end")
    failed = Job.objects.get(pk=broken)
    assert Job.objects.get(pk=fine).status == Status.SUCCEEDED
    assert failed.status == Status.FAILED and failed.error_type
    assert failed.error.startswith(f"{failed.error_type}: ")

    metrics = scrape(client)
    assert metrics[("imagineer_jobs_submitted_total", (("kind", "single"), ("role", "viewer")))] \
        == 1
    assert metrics[("imagineer_jobs_submitted_total", (("kind", "single"), ("role", "editor")))] \
        == 1
    assert metrics[("imagineer_job_duration_seconds_count", (("status", "succeeded"),))] == 1
    assert metrics[("imagineer_job_duration_seconds_count", (("status", "failed"),))] == 1
    assert metrics[("imagineer_job_duration_seconds_sum", (("status", "succeeded"),))] > 0
    assert metrics[("imagineer_generation_errors_total",
                    (("error_type", failed.error_type),))] == 1
    assert metrics[("imagineer_workers_alive", (("cluster", "imagineer"),))] == 1
    assert metrics[("imagineer_jobs_active", ())] == 0
