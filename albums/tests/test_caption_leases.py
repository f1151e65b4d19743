"""Caption runs are leased work: taken once, stopped by a cancel, reclaimed from dead
workers (queued again with their task, or failed after too many attempts)."""

import os
import socket
import subprocess
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.models import OrmQ

from albums import tasks
from albums.models import Album, CaptionRun, Label
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

Status = CaptionRun.Status


@pytest.fixture
def album(viewer):
    return Album.objects.create(name="Harbour", owner=viewer)


def dead_pid():
    process = subprocess.Popen(["true"])  # noqa: S607 (`true` from PATH, for a pid that is dead)
    process.wait()
    return process.pid


def test_it_captions_only_a_queued_run(album, viewer):
    run = CaptionRun.objects.create(album=album, created_by=viewer)
    assert run.cancel()

    assert tasks.caption_album(album.pk, run.pk) == f"caption run {run.pk} is not queued"

    run.refresh_from_db()
    assert (run.status, run.attempts, run.summary) == (
        "cancelled", 0, "Cancelled after 0 of 0 images.")


def test_a_cancel_stops_the_run_at_its_next_image(album, viewer):
    run = CaptionRun.objects.create(album=album, created_by=viewer, total=3)
    assert run.start("elsewhere:1", total=3)
    assert run.advance()
    assert CaptionRun.objects.get(pk=run.pk).cancel()

    assert not run.advance()  # the worker stops here
    assert not run.succeed()

    run.refresh_from_db()
    assert (run.status, run.done, run.worker, run.attempts) == ("cancelled", 1, "elsewhere:1", 1)


def test_it_reclaims_the_runs_of_dead_workers_and_queues_their_tasks_again(
    album, viewer, make_image, settings, tiny_captioner
):
    images = [make_image(created_by=viewer, album=album) for _ in range(2)]
    here = socket.gethostname()
    dead = CaptionRun.objects.create(album=album, created_by=viewer)
    chosen = CaptionRun.objects.create(created_by=viewer, image_ids=[images[0].pk])
    alive = CaptionRun.objects.create(album=album, created_by=viewer)
    silent = CaptionRun.objects.create(created_by=viewer, image_ids=[images[1].pk])
    dead.start(f"{here}:{dead_pid()}", total=2)
    chosen.start(f"{here}:{dead_pid()}", total=1)
    alive.start(f"{here}:{os.getpid()}", total=2)
    silent.start("elsewhere:123", total=1)
    CaptionRun.objects.filter(pk=silent.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1))

    assert tasks.reclaim_stale_caption_runs() == 3

    statuses = dict(CaptionRun.objects.values_list("pk", "status"))
    assert statuses == {dead.pk: "queued", chosen.pk: "queued", alive.pk: "running",
                        silent.pk: "queued"}
    queued = sorted((task.task["func"], task.task["args"]) for task in OrmQ.objects.all())
    assert queued == sorted([("albums.tasks.caption_album", (album.pk, dead.pk)),
                             ("albums.tasks.caption_images", ([images[0].pk], chosen.pk)),
                             ("albums.tasks.caption_images", ([images[1].pk], silent.pk))])

    settings.IMAGINEER_CAPTION_MODEL = tiny_captioner
    assert tasks.caption_album(album.pk, dead.pk) == f"caption run {dead.pk} succeeded"
    dead.refresh_from_db()
    assert (dead.status, dead.done, dead.total, dead.attempts, dead.progress) == (
        "succeeded", 2, 2, 2, 1.0)
    assert Label.objects.filter(source=Label.Source.AUTO).count() == 2


def test_it_fails_a_run_whose_worker_died_too_often(album, viewer, settings):
    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 2
    run = CaptionRun.objects.create(album=album, created_by=viewer)
    CaptionRun.objects.filter(pk=run.pk).update(attempts=1)
    run.refresh_from_db()
    run.start(f"{socket.gethostname()}:{dead_pid()}", total=1)

    assert tasks.reclaim_stale_caption_runs() == 0

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == "the worker stopped 2 times while running this caption run"
    assert run.finished_at is not None
    assert not OrmQ.objects.exists()


BEFORE = [("albums", "0003_image_per_owner")]


def test_a_run_left_running_before_the_lease_is_reclaimed_once_its_worker_is_silent(viewer):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("albums", "CaptionRun")
    started = timezone.now() - timedelta(hours=1)
    running = old.objects.create(status="running", total=4, done=1, started_at=started)
    done = old.objects.create(status="succeeded", total=2, done=2, started_at=started)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    running = CaptionRun.objects.get(pk=running.pk)
    assert (running.heartbeat_at, running.attempts, running.progress) == (started, 1, 0.25)
    assert CaptionRun.objects.get(pk=done.pk).progress == 1.0
    assert tasks.reclaim_stale_caption_runs() == 1
    assert CaptionRun.objects.get(pk=running.pk).status == "queued"


def test_every_minute_and_at_a_workers_start_it_reclaims_the_runs_of_dead_workers(
    album, viewer, make_image, settings, tiny_captioner, start_worker
):
    from workers.registry import run_housekeeping

    make_image(created_by=viewer, album=album)
    here = socket.gethostname()
    every_minute = CaptionRun.objects.create(album=album, created_by=viewer)
    every_minute.start(f"{here}:{dead_pid()}", total=1)

    run_housekeeping()  # the one schedule: albums' step among the others
    assert CaptionRun.objects.get(pk=every_minute.pk).status == "queued"
    assert [task.task["args"] for task in OrmQ.objects.all()] == [(album.pk, every_minute.pk)]
    OrmQ.objects.all().delete()
    CaptionRun.objects.get(pk=every_minute.pk).cancel()

    at_start = CaptionRun.objects.create(album=album, created_by=viewer)
    at_start.start(f"{here}:{dead_pid()}", total=1)
    start_worker(IMAGINEER_CAPTION_MODEL=tiny_captioner)  # reclaims it as it starts

    def ended():
        run = CaptionRun.objects.get(pk=at_start.pk)
        return run if run.is_finished else None

    run = wait_for(ended, timeout=180, message="the new worker to caption the reclaimed run")
    assert (run.status, run.done, run.attempts) == ("succeeded", 1, 2)
