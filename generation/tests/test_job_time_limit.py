"""The per-job time limit (IMAGINEER_JOB_TIME_LIMIT) and worker recycling
(IMAGINEER_WORKER_RECYCLE): a job past its limit fails with error_type "timeout" and the
worker goes on with the next job; a job stuck past the token's task timeout fails the same
way; a job whose worker died past its limit is not run again; a worker process is
replaced after its N tasks. Real qcluster workers and the demo model."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import TIMEOUT, Counter, Job, Status
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# The most steps, eight images of 256 px: some 5,000 times the denoising work of a quick
# job (4 steps, one image of 64 px), so that no calibration on a quiet or a busy machine
# can make it fit the limit (at 64 px it did once: eight images batch cheaply).
SLOW = {"steps": 150, "num_images": 8, "width": 256, "height": 256}


def wait_ended(job_id, timeout=180):
    return wait_for(lambda: (job := Job.objects.get(pk=job_id)).is_finished and job,
                    timeout=timeout, message=f"job {job_id} to end")


def test_it_fails_a_job_past_its_time_limit_and_runs_the_next(start_worker, quick_job):
    # How long a quick job takes here, the pipeline loaded (a loaded machine is many times
    # slower than an idle one): the limit is eight times that; the slow job's denoising is
    # 300 times a quick one's.
    first = start_worker()
    wait_ended(quick_job(seed=1)["id"])
    calibration = wait_ended(quick_job(seed=2)["id"])
    assert calibration.status == Status.SUCCEEDED, calibration.error
    limit = max(5, round(8 * (calibration.finished_at - calibration.started_at).total_seconds()))
    first.stop()

    start_worker(IMAGINEER_JOB_TIME_LIMIT=str(limit))
    slow = quick_job(**SLOW)
    after = quick_job(seed=7)

    job = wait_ended(slow["id"], timeout=60 * limit)
    assert job.status == Status.FAILED
    assert job.error_type == TIMEOUT
    assert job.error.startswith(f"timeout: the job ran past its time limit of {limit} s "
                                "(IMAGINEER_JOB_TIME_LIMIT) and was stopped at step "), job.error
    assert (job.finished_at - job.started_at).total_seconds() > limit
    assert job.progress < 0.95 and not job.images.exists()

    follow_up = wait_ended(after["id"])
    assert follow_up.status == Status.SUCCEEDED, follow_up.error
    assert follow_up.images.count() == 1
    assert follow_up.worker == job.worker, "the same worker process went on"
    assert Counter.objects.get(name="generation_errors",
                               labels='{"error_type": "timeout"}').value == 1


def test_a_job_stuck_past_its_task_timeout_fails_as_a_timeout(settings, quick_job):
    # django-q2's own task timeout (SIGALRM, TimeoutException) as the worker meets it, in
    # this process: the step never reaches the job's own limit.
    from django_q.exceptions import TimeoutException
    from django_q.timeout import TimeoutHandler

    from generation.tasks import run_next_job

    settings.IMAGINEER_JOB_TIME_LIMIT = 600
    submitted = quick_job(steps=150)
    with pytest.raises(TimeoutException), TimeoutHandler(2):
        run_next_job()
    job = Job.objects.get(pk=submitted["id"])
    assert job.status == Status.FAILED
    assert job.error_type == TIMEOUT
    assert job.error == ("timeout: the worker's task ran past its timeout "
                         "(Task exceeded maximum timeout value (2 seconds))")


def test_a_job_whose_worker_died_past_its_time_limit_is_not_run_again(settings, quick_job):
    from generation.tasks import reclaim_stale_jobs

    settings.IMAGINEER_JOB_TIME_LIMIT = 60
    dead = f"{socket.gethostname()}:999999999"  # a process of this host that is gone
    late, early = (Job.objects.get(pk=quick_job(seed=seed)["id"]) for seed in (1, 2))
    for job, ago in ((late, 61), (early, 30)):
        assert job.start(dead)
        Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=ago))

    reclaim_stale_jobs()

    late.refresh_from_db()
    early.refresh_from_db()
    assert late.status == Status.FAILED and late.error_type == TIMEOUT
    assert late.error == ("timeout: the job ran past its time limit of 60 s "
                          "(IMAGINEER_JOB_TIME_LIMIT) and its worker stopped")
    assert early.status == Status.QUEUED, "within its limit: run again"


def test_each_token_carries_a_task_timeout_past_the_time_limit(settings, quick_job):
    from django_q.models import OrmQ

    from generation.tasks import DRAIN_SECONDS, TIMEOUT_GRACE, enqueue_job_token

    settings.IMAGINEER_JOB_TIME_LIMIT = 100
    quick_job()
    assert OrmQ.objects.get().task["timeout"] == 100 + DRAIN_SECONDS + TIMEOUT_GRACE

    settings.IMAGINEER_JOB_TIME_LIMIT = 0  # no limit: the cluster's timeout
    OrmQ.objects.all().delete()
    enqueue_job_token()
    assert "timeout" not in OrmQ.objects.get().task


def test_it_recycles_a_worker_process_after_its_tasks(start_worker, quick_job):
    worker = start_worker(IMAGINEER_WORKER_RECYCLE="1")
    first = wait_ended(quick_job()["id"])
    second = wait_ended(quick_job(seed=9)["id"])
    assert first.status == second.status == Status.SUCCEEDED
    host = socket.gethostname()
    assert first.worker.startswith(f"{host}:") and second.worker.startswith(f"{host}:")
    assert first.worker != second.worker, "a fresh process took the second job"
    wait_for(lambda: "recycled worker" in worker.log(), timeout=30,
             message="the cluster to log the recycle")
    assert worker.alive()

