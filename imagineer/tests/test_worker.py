from django_q.models import Success
from django_q.tasks import async_task

from imagineer.testing import wait_for


def test_it_runs_queued_tasks_in_a_real_worker(worker):
    task_id = async_task("math.floor", 2.5)
    task = wait_for(lambda: Success.objects.filter(id=task_id).first(), timeout=60,
                    message="the worker to run the task")
    assert task.result == 2


def test_it_keeps_queued_tasks_across_a_worker_restart(worker):
    worker.kill()
    task_id = async_task("math.floor", 7.5)  # queued while no worker runs
    worker.start()
    task = wait_for(lambda: Success.objects.filter(id=task_id).first(), timeout=60,
                    message="the restarted worker to run the task")
    assert task.result == 7
