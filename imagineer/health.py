"""What /api/health/ checks: the database, the workers of each cluster, the media disk.

Each check gives a status: "ok", "skipped: <why>" or "error: <what>"; the health check
fails (503) when one is an error, and names it in "failing". `?only=database,disk` lets
only those parts decide the answer: a probe of the web container need not fail, and have
the container restarted, because no worker runs.

Workers: every qcluster worker process records a heartbeat (workers.WorkerHeartbeat).
Each cluster the settings define (the default one and "training") needs at least one
worker seen within IMAGINEER_HEALTH_WORKER_TIMEOUT: without one its queue does not move.
That holds on a fresh install too, until the first workers start (seconds with
`make run`): give a health probe a start period. Rows of workers long gone are forgotten
(WorkerHeartbeat.forget_gone), so the list shows the live workers and those recently lost.

Who sees what (api.health): anyone gets the status; the report (host names and pids of
workers, queue depths, disk space) needs the metrics token or a staff session. The
database check never shows the driver's message, which can name the database's host and
user: the report says the kind of error, the log says the rest.
"""

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from workers.models import WorkerHeartbeat

from .metrics import clusters, work_in_progress, workers_alive

log = logging.getLogger(__name__)


def check_database():
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        log.error("health check: the database cannot be reached: %s: %s",
                  exc.__class__.__name__, exc)
        return f"error: the database cannot be reached ({exc.__class__.__name__}; see the log)"
    return "ok"


def check_workers():
    timeout = settings.IMAGINEER_HEALTH_WORKER_TIMEOUT
    alive = workers_alive()
    missing = [cluster for cluster in clusters() if not alive.get(cluster)]
    now = timezone.now()
    seen = [
        {"name": row.name, "cluster": row.cluster, "started_at": row.started_at,
         "last_seen": row.last_seen,
         "seconds_ago": round((now - row.last_seen).total_seconds(), 1)}
        for row in WorkerHeartbeat.objects.all()
    ]
    status = "ok"
    if missing:
        status = f"error: no worker seen in the last {timeout} s: {', '.join(missing)}"
    return {"status": status, "timeout_seconds": timeout, "workers": seen}


def check_disk():
    """Free space on the disk of the media root; skipped when media is not on local disk."""
    try:
        root = Path(default_storage.path(""))
    except NotImplementedError:  # remote storage (S3)
        return {"status": "skipped: media is not on local disk"}
    while not root.exists():  # a fresh install may not have made it yet
        root = root.parent
    usage = shutil.disk_usage(root)
    free_mb = usage.free // (1024 * 1024)
    minimum = settings.IMAGINEER_HEALTH_MIN_FREE_MB
    status = "ok"
    if free_mb < minimum:
        status = f"error: {free_mb} MB free for media, less than {minimum} MB"
    return {"status": status, "free_mb": free_mb,
            "free_percent": round(100 * usage.free / usage.total, 1), "min_free_mb": minimum}


PARTS = ["database", "workers", "disk"]


def report(only=()):
    """(healthy, the report). Without the database, its dependent checks are skipped.

    `only`: the parts that decide `healthy` (all when empty); the report shows every part,
    and "failing" every failing one."""
    database = check_database()
    if database == "ok":
        queue_depth = {name: counts["queued"] for name, counts in work_in_progress().items()}
        workers = check_workers()
    else:
        queue_depth, workers = None, {"status": "skipped: the database is down"}
    disk = check_disk()
    statuses = {"database": database, "workers": workers["status"], "disk": disk["status"]}
    failing = [name for name, status in statuses.items() if status.startswith("error")]
    healthy = not [name for name in failing if not only or name in only]
    return healthy, {
        "status": "ok" if healthy else "unhealthy",
        "failing": failing,
        "database": database,
        "queue_depth": queue_depth,
        "workers": workers,
        "disk": disk,
    }
