import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.files.storage import InMemoryStorage
from django.utils import timezone

from imagineer.testing import manage, subprocess_env, wait_for
from workers.models import WorkerHeartbeat

TOKEN = "health-test-token"  # noqa: S105 (a test's metrics token)


@pytest.fixture
def client(client, settings):
    """A monitor: the metrics token shows it the whole report (anonymous callers get the
    status alone: test_it_tells_anonymous_callers_the_status_alone)."""
    settings.IMAGINEER_METRICS_TOKEN = TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def heartbeat(cluster, name=None, seconds_ago=0):
    """A worker's row as its heartbeat leaves it, `seconds_ago` after its last beat."""
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    host, _, pid = name.rpartition(":")
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return WorkerHeartbeat.objects.create(name=name, cluster=cluster, host=host, pid=int(pid),
                                          started_at=seen, last_seen=seen)


@pytest.mark.django_db
def test_it_names_the_missing_workers(client):
    # A fresh install: no worker has ever started.
    response = client.get("/api/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["workers"]
    assert body["database"] == "ok"
    assert body["queue_depth"] == {"generation": 0, "training": 0}
    assert body["workers"]["status"] == (
        "error: no worker seen in the last 120 s: imagineer, training")
    assert body["workers"]["workers"] == []
    assert body["disk"]["status"] == "ok" and body["disk"]["free_mb"] > 0


@pytest.mark.django_db
def test_it_lets_only_the_parts_asked_for_decide(client):
    response = client.get("/api/health/?only=database,disk")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == ["workers"]  # still shown
    assert client.get("/api/health/?only=workers").status_code == 503
    wrong = client.get("/api/health/?only=database,web")
    assert wrong.status_code == 400
    assert wrong.json() == {"only": ["Unknown part: web. Allowed: database, workers, disk."]}


@pytest.mark.django_db
def test_it_answers_503_and_names_the_workers_when_their_heartbeat_is_stale(client):
    heartbeat("imagineer", "web-1:10", seconds_ago=5)
    heartbeat("training", "gpu-1:20", seconds_ago=121)
    body = client.get("/api/health/").json()
    assert body["failing"] == ["workers"]
    assert body["workers"]["status"] == "error: no worker seen in the last 120 s: training"
    seen = {worker["name"]: worker for worker in body["workers"]["workers"]}
    assert seen["gpu-1:20"]["cluster"] == "training"
    assert seen["gpu-1:20"]["seconds_ago"] >= 121
    assert seen["web-1:10"]["seconds_ago"] < 60


@pytest.mark.django_db
def test_it_answers_503_and_names_the_disk_when_media_is_nearly_full(client, settings,
                                                                      media_root):
    free_mb = shutil.disk_usage(media_root.parent).free // (1024 * 1024)
    settings.IMAGINEER_HEALTH_MIN_FREE_MB = free_mb + 10_000
    heartbeat("imagineer", "web-1:10")
    heartbeat("training", "gpu-1:20")
    response = client.get("/api/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["disk"]
    assert body["disk"]["status"].startswith("error: ")
    assert body["disk"]["min_free_mb"] == free_mb + 10_000
    assert abs(body["disk"]["free_mb"] - free_mb) < 1000


class RemoteStorage(InMemoryStorage):
    """Files kept off this machine: like S3's, its files have no local path."""

    def path(self, name):
        raise NotImplementedError("This backend doesn't support absolute paths.")


@pytest.mark.django_db
def test_it_skips_the_disk_check_when_media_is_not_on_local_disk(client, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": f"{__name__}.RemoteStorage"}}
    settings.IMAGINEER_HEALTH_MIN_FREE_MB = 10**12
    body = client.get("/api/health/").json()
    assert body["disk"] == {"status": "skipped: media is not on local disk"}
    assert "disk" not in body["failing"]


@pytest.mark.django_db
def test_it_forgets_workers_long_gone():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    heartbeat("imagineer", f"{here}:{gone.pid}")  # its process has ended
    heartbeat("imagineer", "elsewhere:1", seconds_ago=2 * 24 * 3600)
    heartbeat("training", "elsewhere:2", seconds_ago=3600)  # lost an hour ago: still listed
    alive = heartbeat("imagineer")  # this process
    WorkerHeartbeat.forget_gone()
    assert set(WorkerHeartbeat.objects.values_list("name", flat=True)) == {
        "elsewhere:2", alive.name}


@pytest.mark.django_db
def test_it_answers_503_and_names_the_database_when_it_is_down():
    # A real web process whose database cannot be reached.
    code = (
        "from django.test import Client;import json;"
        "r=Client(HTTP_HOST='localhost').get('/api/health/');print(r.status_code);print(r.content.decode());"
        f"r=Client(HTTP_HOST='localhost',HTTP_AUTHORIZATION='Bearer {TOKEN}').get('/api/health/');"
        "print(r.status_code);print(r.content.decode())"
    )
    env = subprocess_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/unreachable",
                         IMAGINEER_METRICS_TOKEN=TOKEN)
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    status, anonymous, status_with_token, body = result.stdout.strip().splitlines()[-4:]
    assert status == status_with_token == "503"
    assert json.loads(anonymous) == {"status": "unhealthy"}
    body = json.loads(body)
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["database"]
    # The kind of error, never the driver's message: it names the database's host and user.
    assert body["database"] == ("error: the database cannot be reached (OperationalError; "
                                "see the log)")
    assert "127.0.0.1" not in json.dumps(body)
    assert "127.0.0.1" in result.stderr  # the log has it
    assert body["workers"] == {"status": "skipped: the database is down"}


@pytest.mark.django_db(transaction=True)
def test_it_is_healthy_with_a_live_worker_in_each_cluster(client, start_worker, tmp_path):
    # Workers that beat every second; this process keeps the 120 s timeout.
    generation = start_worker(IMAGINEER_HEALTH_WORKER_TIMEOUT=4)
    training = start_worker(IMAGINEER_HEALTH_WORKER_TIMEOUT=4, Q_CLUSTER_NAME="training",
                            IMAGINEER_TRAINING_DIR=tmp_path / "training")
    rows = wait_for(lambda: {row.cluster: row for row in WorkerHeartbeat.objects.all()}
                    if WorkerHeartbeat.objects.values("cluster").distinct().count() == 2
                    else None, timeout=90, message="a heartbeat from each cluster")
    response = client.get("/api/health/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    listed = {worker["cluster"]: worker for worker in body["workers"]["workers"]}
    assert listed["imagineer"]["name"] == rows["imagineer"].name
    assert listed["training"]["name"] == rows["training"].name
    assert rows["imagineer"].name.endswith(f":{rows['imagineer'].pid}")

    first = rows["training"].last_seen
    wait_for(lambda: WorkerHeartbeat.objects.get(pk=rows["training"].pk).last_seen > first,
             timeout=30, message="the training worker to beat again")

    training.kill()
    assert generation.alive()
    # Time passes: the dead worker's last beat is now older than the timeout.
    WorkerHeartbeat.objects.filter(cluster="training").update(
        last_seen=timezone.now() - timedelta(seconds=300))
    response = client.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]
    assert "training" in response.json()["workers"]["status"]


@pytest.mark.django_db
@pytest.mark.parametrize("healthy", [True, False])
def test_it_tells_anonymous_callers_the_status_alone(healthy, client, settings, viewer,
                                                     editor):
    # Host names and pids of the workers, queue depths and disk space are for monitors.
    if healthy:
        heartbeat("imagineer", "gpu-1:10")
        heartbeat("training", "gpu-1:20")
    status = 200 if healthy else 503
    expected = {"status": "ok" if healthy else "unhealthy"}
    del client.defaults["HTTP_AUTHORIZATION"]
    for credentials in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong-token"}):
        response = client.get("/api/health/", **credentials)
        assert (response.status_code, response.json()) == (status, expected)
    client.force_login(viewer)  # signed in, but no staff
    response = client.get("/api/health/")
    assert (response.status_code, response.json()) == (status, expected)
    assert client.get("/api/health/?only=database").json() == {"status": "ok"}

    client.force_login(editor)  # staff: the report
    body = client.get("/api/health/").json()
    assert body["status"] == expected["status"]
    assert set(body) == {"status", "failing", "database", "queue_depth", "workers", "disk"}
    client.logout()
    body = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert set(body) == {"status", "failing", "database", "queue_depth", "workers", "disk"}
