"""Leased, queued work and the workers that do it.

`LeasedWork` is the abstract model of a row a worker runs (a generation Job, a
TrainingRun, a CaptionRun): its status, the worker that holds it, the heartbeat that
renews its lease, its attempts, and the state changes that every kind shares. Each
state change is a conditional UPDATE, so two workers (or a worker and a cancel) can never
both win: the row's status decides and, while it runs, the worker it names. A worker whose lease ran
out (a machine cut off for a while) finds its row given to another and changes nothing.

`WorkerHeartbeat` is a qcluster worker process and when it was last seen alive.
"""

from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, models, transaction
from django.db.models import F
from django.utils import timezone

from .leases import Heartbeat, died_here, heartbeat_interval, worker_name


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = [Status.QUEUED, Status.RUNNING]
FINISHED = [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]


class LeasedWorkQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE)

    def queued(self):
        return self.filter(status=Status.QUEUED)

    def running(self):
        return self.filter(status=Status.RUNNING)

    def stale(self):
        """Running rows whose worker stopped renewing the lease (killed, crashed, cut off)."""
        cutoff = timezone.now() - timedelta(seconds=settings.IMAGINEER_JOB_LEASE_SECONDS)
        return self.running().filter(heartbeat_at__lt=cutoff)

    def renew(self, worker):
        """Renew the lease of these rows while `worker` runs them (a Heartbeat's beat)."""
        return self.running().filter(worker=worker).update(heartbeat_at=timezone.now())


class LeasedWork(models.Model):
    """A row that a worker takes, runs under a lease and ends (see the module docstring).

    Subclasses say how many starts a row gets (`max_attempts_setting`), what it is called
    in the error of a row whose worker died too often (`noun`), and what else that error
    sets (`worker_stopped`).
    """

    Status = Status
    ACTIVE = ACTIVE
    FINISHED = FINISHED

    max_attempts_setting = "IMAGINEER_JOB_MAX_ATTEMPTS"
    noun = "work"
    worker_stopped = {}

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED,
                              db_index=True)
    progress = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self):
        return self.status in FINISHED

    @transaction.atomic
    def _transition(self, from_statuses, *, held_by=None, any_worker=False, **fields):
        """Update `fields` if the status is one of `from_statuses` and the row is held by
        `held_by`, by default the worker this instance names (`any_worker`: whoever holds
        it: a start, a cancel, a retry). True when it was; the instance then holds the new
        values. A change that ends the row calls ended() in the same transaction."""
        rows = type(self)._default_manager.filter(pk=self.pk, status__in=from_statuses)
        if not any_worker:
            rows = rows.filter(worker=self.worker if held_by is None else held_by)
        if not rows.update(**fields):
            return False
        expressions = [key for key, value in fields.items()
                       if hasattr(value, "resolve_expression")]
        for key, value in fields.items():
            if key not in expressions:
                setattr(self, key, value)
        if expressions:
            self.refresh_from_db(fields=expressions)
        if fields.get("status") in FINISHED:
            self.ended()
        return True

    def ended(self):
        """The row has just ended (succeeded, failed, cancelled), in the transaction that
        ended it: a subclass counts it for /metrics."""

    def start(self, worker, **fields):
        """A worker takes a queued row; False when it is not queued (taken, cancelled)."""
        now = timezone.now()
        return self._transition([Status.QUEUED], any_worker=True, status=Status.RUNNING,
                                heartbeat_at=now, worker=worker, attempts=F("attempts") + 1,
                                error="", **{"started_at": now, **fields})

    def beat(self, worker=None):
        """Renew the lease; False once the row is no longer this worker's."""
        return self._transition([Status.RUNNING], held_by=worker, heartbeat_at=timezone.now())

    def cancel(self):
        """Cancel a queued row, or ask a running one to stop at its next step."""
        return self._transition(ACTIVE, any_worker=True, status=Status.CANCELLED,
                                finished_at=timezone.now())

    def fail(self, error, worker=None, **fields):
        """End the row failed with `error` (a text)."""
        return self._transition([Status.RUNNING, Status.QUEUED], held_by=worker,
                                status=Status.FAILED, error=str(error)[:5000],
                                finished_at=timezone.now(), **fields)

    def max_attempts(self):
        return getattr(settings, self.max_attempts_setting)

    def requeue(self, **fields):
        """Give a row whose worker died back to the queue, or, once it was started
        max_attempts() times, fail it. True when it is queued again."""
        if self.attempts >= self.max_attempts():
            self._transition(
                [Status.RUNNING], status=Status.FAILED, finished_at=timezone.now(),
                error=f"the worker stopped {self.attempts} times while running this "
                      f"{self.noun}", **self.worker_stopped)
            return False
        return self._transition([Status.RUNNING], status=Status.QUEUED, worker="",
                                heartbeat_at=None, **fields)


class WorkerHeartbeatQuerySet(models.QuerySet):
    def alive(self):
        """Workers seen within IMAGINEER_HEALTH_WORKER_TIMEOUT."""
        return self.filter(last_seen__gte=timezone.now() - WorkerHeartbeat.timeout())


class WorkerHeartbeat(models.Model):
    """A qcluster worker process, of any cluster, and when it was last seen alive.

    Each worker process records itself as it starts and every few seconds after
    (start_beating); the health check and the metrics read it.
    Rows of workers long gone are forgotten, so the list does not grow with each restart.
    """

    # A worker not seen for this long is forgotten (a process of this host, as soon as a
    # new worker here sees it is gone).
    FORGET_AFTER = timedelta(days=1)

    name = models.CharField(max_length=200, unique=True, help_text="host:pid")
    cluster = models.CharField(max_length=100, help_text="The django-q2 cluster it serves.")
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    objects = WorkerHeartbeatQuerySet.as_manager()

    class Meta:
        ordering = ["cluster", "name"]

    def __str__(self):
        return f"{self.cluster} worker {self.name}"

    @staticmethod
    def timeout():
        return timedelta(seconds=settings.IMAGINEER_HEALTH_WORKER_TIMEOUT)

    @classmethod
    def beat(cls, cluster):
        """This process is alive (and serves `cluster`)."""
        name, now = worker_name(), timezone.now()
        host, _, pid = name.rpartition(":")
        cls.objects.update_or_create(
            name=name, defaults={"last_seen": now, "cluster": cluster},
            create_defaults={"cluster": cluster, "host": host, "pid": int(pid),
                             "started_at": now, "last_seen": now},
        )

    @classmethod
    def start_beating(cls):
        """As a worker process of any cluster starts (workers.registry.at_worker_start):
        beat every heartbeat_interval() from a daemon thread, record it now, for the
        health check and the metrics, and forget the workers that are gone."""
        from django_q.conf import Conf

        def beat():
            close_old_connections()  # reopens a connection that a database restart broke
            cls.beat(Conf.CLUSTER_NAME)

        # First: a database not up yet fails the record below, not the beats after.
        Heartbeat(beat, heartbeat_interval()).start()
        cls.forget_gone()
        cls.beat(Conf.CLUSTER_NAME)

    @classmethod
    def forget_gone(cls):
        """Delete the rows of workers long silent, and of this host's dead processes."""
        cls.objects.filter(last_seen__lt=timezone.now() - cls.FORGET_AFTER).delete()
        dead = [row.pk for row in cls.objects.only("name") if died_here(row.name)]
        cls.objects.filter(pk__in=dead).delete()
