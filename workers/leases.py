"""What every worker task shares: who this worker is, whether another one is dead, a
heartbeat thread that renews a lease while a long call runs (or, for the whole life of a
worker process, its WorkerHeartbeat row: WorkerHeartbeat.start_beating), and the reclaim of
the work of dead workers.

Rows that a worker runs (LeasedWork: generation jobs, training runs, caption runs) record
`worker_name()`. When that worker dies (kill -9, out of memory), a later worker on the
same host sees its process gone (`died_here`) and gives the row back to the queue
(`reclaim`); rows of other hosts are given back when their heartbeat is older than the
lease (IMAGINEER_JOB_LEASE_SECONDS).
"""

import logging
import os
import socket
import threading

from django.db import close_old_connections, connection

log = logging.getLogger(__name__)


class NoLongerOurs(Exception):
    """The row was cancelled, or given to another worker, while this one worked on it: its
    results are not kept."""


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def died_here(worker):
    """True when `worker` (a worker_name()) ran on this host and its process is gone."""
    host, _, pid = worker.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


def abandoned(rows):
    """The running rows of `rows` (a LeasedWork queryset) whose worker is gone: dead on
    this host, or silent past the lease (asked once, not once per row)."""
    stale_ids = set(rows.stale().values_list("pk", flat=True))
    return [row for row in rows.running() if row.pk in stale_ids or died_here(row.worker)]


def reclaim(rows, *, requeued, after=None):
    """Give back the running rows whose worker is gone (LeasedWork.requeue: queued again,
    or failed after too many attempts). `requeued(row)` is called for each row queued
    again (it queues a task for it), `after(row)` for every row given back. Returns how
    many were queued again."""
    count = 0
    for row in abandoned(rows):
        if row.requeue():
            requeued(row)
            count += 1
        if after is not None:
            after(row)
    if count:
        log.warning("reclaimed work of dead workers",
                    extra={"model": rows.model._meta.label, "count": count})
    return count


def process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        # A killed process whose parent died too can linger as a zombie (in containers
        # nothing may reap it): it exists, but it is dead.
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def at_spawn(task):
    """Call task() as a worker process starts (django-q2's post_spawn), on a fresh
    database connection that is closed after: the forked process must not share one."""
    close_old_connections()
    try:
        task()
    except Exception:  # the database may be starting; the schedule (or next beat) tries again
        log.exception("%s at worker start failed", task.__name__)
    finally:
        connection.close()


def heartbeat_interval():
    """Seconds between two heartbeats of a worker process: a few within the health timeout."""
    from django.conf import settings

    return max(settings.IMAGINEER_HEALTH_WORKER_TIMEOUT / 4, 0.5)


def lease_interval():
    """Seconds between two renewals of a lease: a few within IMAGINEER_JOB_LEASE_SECONDS."""
    from django.conf import settings

    return max(settings.IMAGINEER_JOB_LEASE_SECONDS / 4, 0.5)


class Heartbeat:
    """Calls beat() every `interval` seconds from a thread while the `with` block runs
    (or, once start() is called, until the process ends).

    beat() typically renews a lease with an UPDATE; it runs on the thread's own database
    connection, closed when the thread ends. A failing beat is logged and tried again.
    """

    def __init__(self, beat, interval):
        self.beat = beat
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # a locked database now and then must not end the beat
                    log.exception("heartbeat failed")
        finally:
            connection.close()

    def start(self):
        """Beat until the process ends (the thread is a daemon)."""
        self.thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
