"""Two workers (two `manage.py qcluster` processes, as on two machines) on one PostgreSQL
database: every job runs exactly once, none is lost, and both take a share."""

import os

import pytest
from django.db import connection
from django.db.models import Count

from albums.models import Image
from generation.models import Job, Status
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = 40


def test_it_runs_every_job_exactly_once_on_two_workers(start_worker, quick_job, make_user,
                                                       settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises every writer, "
                    "so it cannot show two workers racing for the same job")
    settings.IMAGINEER_JOBS_PER_MINUTE = settings.IMAGINEER_MAX_ACTIVE_JOBS = JOBS
    users = [make_user("alice"), make_user("bob")]
    workers = [start_worker(OMP_NUM_THREADS=1) for _ in range(2)]
    ids = [quick_job(users[n % 2], prompt=f"square {n}", seed=n, steps=2,
                     num_images=1 + n % 2)["id"]
           for n in range(JOBS)]

    def finished():
        return not Job.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING])

    wait_for(finished, timeout=90, message=f"the {JOBS} jobs to finish")
    jobs = list(Job.objects.filter(pk__in=ids).annotate(made=Count("images")))
    assert {job.status for job in jobs} == {Status.SUCCEEDED}, [job.error for job in jobs]
    assert {job.attempts for job in jobs} == {1}, "no job started twice"
    assert all(job.made == job.num_images for job in jobs)
    assert Image.objects.count() == sum(job.num_images for job in jobs)
    assert not Image.objects.annotate(n=Count("jobs")).filter(n__gt=1).exists()

    # Job.worker is "host:pid" of a worker process; each cluster is its own process group.
    clusters = {os.getpgid(int(job.worker.rpartition(":")[2])) for job in jobs}
    assert clusters == {worker.process.pid for worker in workers}, "both workers took jobs"


@pytest.mark.django_db
def test_it_leaves_a_job_given_to_another_worker_to_that_worker(quick_job):
    from datetime import timedelta

    from django.utils import timezone

    from generation.tasks import reclaim_stale_jobs

    submitted = quick_job()
    cut_off = Job.objects.get(pk=submitted["id"])
    assert cut_off.start("machine-a:100")
    # Machine A loses the database for longer than the lease: its job is given back...
    Job.objects.filter(pk=cut_off.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert reclaim_stale_jobs() == 1
    taker = Job.objects.get(pk=cut_off.pk)
    assert taker.start("machine-b:200")
    # ...and when A comes back, it can neither go on, nor end the job, nor fail it.
    assert not cut_off.set_progress(0.5)
    assert not cut_off.finish([])
    assert not cut_off.fail("the late worker's error")
    assert not cut_off.requeue()
    assert taker.set_progress(0.5) and taker.finish([])
    job = Job.objects.get(pk=submitted["id"])
    assert (job.status, job.worker, job.attempts, job.error) == \
        (Status.SUCCEEDED, "machine-b:200", 2, "")
