"""/metrics: the Prometheus figures, read from the database at each scrape."""

import shutil
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
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
    """Let `job` start and end `seconds` apart, as a worker would have (the clock, which
    is outside the system, moved)."""
    started = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=started):
        job.start("elsewhere:1")
    with mock.patch("django.utils.timezone.now",
                    return_value=started + timedelta(seconds=seconds)):
        if end == Status.FAILED:
            job.fail(ValueError("the prompt was too red"))
        elif end == Status.CANCELLED:
            job.cancel()
        else:
            job.finish([])


def test_it_counts_jobs_runs_and_durations(
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
    runs = [TrainingRun.objects.create(name="r", album=album, base_model=model, owner=editor,
                                       status=status)
            for status in ("running", "queued", "queued", "running")]
    assert runs[3].fail(RuntimeError("out of memory"))

    with django_assert_max_num_queries(5):  # the totals, and a count of the active rows
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
    assert value("imagineer_jobs_finished_total", status="succeeded") == 2
    assert value("imagineer_jobs_finished_total", status="failed") == 2
    assert value("imagineer_jobs_finished_total", status="cancelled") == 1

    assert value("imagineer_generation_errors_total", error_type="ValueError") == 1
    assert value("imagineer_generation_errors_total", error_type="unknown") == 1
    assert value("imagineer_jobs_active") == 1
    assert value("imagineer_queue_depth", queue="generation") == 1
    assert value("imagineer_queue_depth", queue="training") == 2
    assert value("imagineer_training_runs_active") == 1
    assert value("imagineer_training_runs_finished_total", status="failed") == 1
    assert value("imagineer_training_runs_finished_total", status="succeeded") == 0
    for reason in ("invalid", "rate_limited", "cap", "queue_full"):  # shown before any
        assert value("imagineer_jobs_rejected_total", reason=reason) == 0
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


def test_it_keeps_its_totals_when_jobs_are_deleted(client, token, viewer):
    model = ModelVersion.objects.create(name="m", kind="base", source="m")
    jobs = [Job.create_from(job_params(model), owner=viewer) for _ in range(3)]
    ran(jobs[0], 2, Status.SUCCEEDED)
    ran(jobs[1], 40, Status.FAILED)
    before = scrape(client)
    assert before[("imagineer_queue_depth", (("queue", "generation"),))] == 1

    Job.objects.all().delete()
    viewer.delete()  # and its jobs' owner with them
    after = scrape(client)

    totals = {key: value for key, value in before.items()
              if key[0].endswith(("_total", "_bucket", "_count", "_sum"))}
    assert totals and all(after[key] == value for key, value in totals.items())
    assert before[("imagineer_jobs_submitted_total", (("kind", "single"), ("role", "viewer")))] \
        == 3
    assert after[("imagineer_queue_depth", (("queue", "generation"),))] == 0  # a gauge


def test_it_counts_refused_submissions_by_reason_whatever_sent_them(
        client, token, api_as, viewer, editor, demo_base, settings):
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="{sign}", width=64,
                                          height=64)
    prompt_set.import_csv("sign\naries\nleo\n")
    quick = {"prompt": "a kite", "width": 64, "height": 64, "steps": 3}
    api = api_as(viewer)
    pages = Client()
    pages.force_login(viewer)

    def rejected():
        metrics = scrape(client)
        return {reason: metrics[("imagineer_jobs_rejected_total", (("reason", reason),))]
                for reason in ("invalid", "rate_limited", "cap", "queue_full")}

    # Parameters that break a rule: through the API, the generate page and a batch.
    assert api.post("/api/jobs/", {**quick, "width": 65}, format="json").status_code == 400
    assert pages.post("/generate/", {"prompt": " ", "size": "64x64", "scheduler": "pndm"}
                      ).status_code == 200
    assert api_as(editor).post("/api/batches/", {"set": "signs", "steps": 999},
                               format="json").status_code == 400
    assert rejected() == {"invalid": 3, "rate_limited": 0, "cap": 0, "queue_full": 0}
    assert Job.objects.count() == 0

    settings.IMAGINEER_JOBS_PER_MINUTE = 1
    assert api_as(viewer).post("/api/jobs/", quick, format="json").status_code == 201
    assert api.post("/api/jobs/", quick, format="json").status_code == 429
    settings.IMAGINEER_JOBS_PER_MINUTE, settings.IMAGINEER_MAX_ACTIVE_JOBS = 100, 1
    assert pages.post("/generate/", {**quick, "size": "64x64", "scheduler": "pndm"}
                      ).status_code == 429
    settings.IMAGINEER_MAX_QUEUE = 1
    single = Job.objects.get()
    editor_pages = Client()
    editor_pages.force_login(editor)
    assert editor_pages.post("/generate/", {**quick, "size": "64x64", "scheduler": "pndm"}
                             ).status_code == 503
    editor_pages.post("/admin/generation/job/", {"action": "retry_jobs",  # a remix
                                                 "_selected_action": [single.pk]})
    # A batch is never refused because the queue is full: its jobs wait for room (held).
    assert editor_pages.post("/sets/signs/", {"theme": "gold"}).status_code == 302
    assert rejected() == {"invalid": 3, "rate_limited": 1, "cap": 1, "queue_full": 2}
    assert Job.objects.filter(batch=None).count() == 1 and Job.objects.held().count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_starts_the_totals_from_the_jobs_there_were_before_the_counters(viewer):
    """Upgrading sets no figure back: the migration that makes the counters counts the
    jobs and training runs already there, as /metrics counted them before."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("generation", "0005_move_workerheartbeat"),
              ("training", "0002_housekeeping_schedule")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    model = old.get_model("generation", "ModelVersion").objects.create(
        name="m", kind="base", source="m")
    started = timezone.now()
    Job = old.get_model("generation", "Job")
    common = {"owner_id": viewer.pk, "model": model, "prompt": "p", "width": 64, "height": 64,
              "steps": 1, "guidance_scale": 5.0, "seed": 1, "scheduler": "pndm",
              "owner_role": "viewer"}
    for seconds, status, error_type in ((0.5, "succeeded", ""), (3, "succeeded", ""),
                                        (45, "failed", "OSError"), (None, "failed", ""),
                                        (None, "queued", "")):
        Job.objects.create(**common, status=status, error_type=error_type,
                           started_at=started if seconds else None,
                           finished_at=started + timedelta(seconds=seconds) if seconds else None)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(latest)

    from generation.models import Counter

    totals = {(name, tuple(sorted(labels.items()))): value
              for name, rows in Counter.totals().items() for labels, value in rows}
    assert totals == {
        ("jobs_submitted", (("kind", "single"), ("role", "viewer"))): 5,
        ("jobs_finished", (("status", "succeeded"),)): 2,
        ("jobs_finished", (("status", "failed"),)): 2,
        ("generation_errors", (("error_type", "OSError"),)): 1,
        ("generation_errors", (("error_type", "unknown"),)): 1,
        ("job_duration_bucket", (("le", "1"), ("status", "succeeded"))): 1,
        ("job_duration_bucket", (("le", "5"), ("status", "succeeded"))): 1,
        ("job_duration_bucket", (("le", "60"), ("status", "failed"))): 1,
        ("job_duration_milliseconds", (("status", "succeeded"),)): 3500,
        ("job_duration_milliseconds", (("status", "failed"),)): 45000,
    }
