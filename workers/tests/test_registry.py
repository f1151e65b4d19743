"""workers.registry: each app registers its own housekeeping steps and worker-start
hooks; one schedule runs the steps, one post_spawn receiver the hooks."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from workers import registry
from workers.models import WorkerHeartbeat


def test_each_app_registers_its_own_steps_and_hooks_in_the_order_of_installed_apps():
    assert registry._steps == [
        WorkerHeartbeat.forget_gone,
        "albums.tasks.reclaim_stale_caption_runs",
        "albums.scrape.reclaim_stale_scrape_runs",
        "generation.tasks.housekeeping",
        "training.tasks.housekeeping",
    ]
    assert registry._hooks == [
        WorkerHeartbeat.start_beating,
        "albums.tasks.reclaim_stale_caption_runs",
        "albums.scrape.reclaim_stale_scrape_runs",
        "generation.tasks.reclaim_stale_jobs",
        "generation.tasks.start_idle_reaper",
        "training.tasks.reclaim_stale_runs",
    ]


def test_a_step_registered_twice_runs_once(monkeypatch):
    monkeypatch.setattr(registry, "_steps", [])
    registry.housekeeping("math.floor")
    registry.housekeeping("math.floor")
    assert registry._steps == ["math.floor"]


@pytest.mark.django_db
def test_a_failing_step_leaves_the_others_to_run(monkeypatch):
    def broken():
        raise RuntimeError("the database went away")

    gone = WorkerHeartbeat.objects.create(
        name="gpu9:1", cluster="imagineer", host="gpu9", pid=1,
        last_seen=timezone.now() - timedelta(days=2))
    monkeypatch.setattr(registry, "_steps", [broken, WorkerHeartbeat.forget_gone])

    result = registry.run_housekeeping()

    assert not WorkerHeartbeat.objects.filter(pk=gone.pk).exists()
    assert result.startswith("housekeeping: 1 steps ran, failed: ")
    assert "broken" in result


@pytest.mark.django_db
def test_one_schedule_runs_every_apps_housekeeping():
    schedules = Schedule.objects.filter(func__contains="housekeeping")
    assert list(schedules.values_list("name", "func", "minutes", "cluster")) == [
        ("housekeeping", "workers.registry.run_housekeeping", 1, None)]
