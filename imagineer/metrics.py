"""/metrics: Prometheus figures of jobs, training runs and workers.

Workers are other processes (and other machines), so no figure is kept in memory: the
collector reads them from the database at each scrape, with a few aggregate queries
(the duration histogram is one query with a conditional count per bucket). Counters are
counts of job rows, so deleting jobs lowers them, which Prometheus takes for a reset.

The collector lives on its own registry, not prometheus_client's global one: /metrics
shows these figures only, the same from every web process.
"""

import hmac
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Q, Sum, Value, When
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from generation.models import Job, Status
from training.models import TrainingRun
from workers.models import WorkerHeartbeat

# Upper bounds (seconds) of the job duration buckets: a 64 px demo job takes about a
# second, a 512 px job on a CPU minutes.
DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800]


def clusters():
    """The django-q2 clusters the settings define: the default one and the alternates."""
    conf = settings.Q_CLUSTER
    return [conf["name"], *conf.get("ALT_CLUSTERS", {})]


def work_in_progress():
    """Queued and running generation jobs and training runs (two queries):
    {"generation": {"queued": n, "running": m}, "training": {...}}."""
    active = [Status.QUEUED, Status.RUNNING]
    counts = {}
    for name, rows in (("generation", Job.objects), ("training", TrainingRun.objects)):
        found = dict(rows.filter(status__in=active).values_list("status")
                     .annotate(n=Count("id")).order_by())
        counts[name] = {status: found.get(status, 0) for status in active}
    return counts


def workers_alive():
    """The number of workers seen within the health timeout, by cluster."""
    found = dict(WorkerHeartbeat.objects.alive().values_list("cluster")
                 .annotate(n=Count("id")).order_by())
    return {cluster: found.get(cluster, 0) for cluster in sorted({*clusters(), *found})}


def submitted():
    family = CounterMetricFamily(
        "imagineer_jobs_submitted", "Generation jobs submitted, by kind (single or part of "
        "a batch) and the submitter's role then.", labels=["kind", "role"])
    kind = Case(When(batch__isnull=True, then=Value("single")), default=Value("batch"))
    rows = (Job.objects.annotate(kind=kind).values_list("kind", "owner_role")
            .annotate(n=Count("id")).order_by())
    for job_kind, role, count in rows:
        family.add_metric([job_kind, role or "none"], count)
    return family


def durations():
    family = HistogramMetricFamily(
        "imagineer_job_duration_seconds", "Time from start to end of finished generation "
        "jobs (their last attempt), by how they ended.", labels=["status"])
    buckets = {
        f"le_{bound}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for bound in DURATION_BUCKETS
    }
    rows = (Job.objects.filter(status__in=[Status.SUCCEEDED, Status.FAILED, Status.CANCELLED],
                               started_at__isnull=False, finished_at__isnull=False)
            .alias(duration=ExpressionWrapper(F("finished_at") - F("started_at"),
                                              output_field=DurationField()))
            .values("status").annotate(count=Count("id"), total=Sum("duration"), **buckets)
            .order_by("status"))
    for row in rows:
        counts = [(floatToGoString(bound), row[f"le_{bound}"]) for bound in DURATION_BUCKETS]
        family.add_metric([row["status"]], [*counts, ("+Inf", row["count"])],
                          sum_value=row["total"].total_seconds())
    return family


def errors():
    family = CounterMetricFamily(
        "imagineer_generation_errors", "Failed generation jobs, by the class of the error "
        "that failed them.", labels=["error_type"])
    rows = (Job.objects.filter(status=Status.FAILED).values_list("error_type")
            .annotate(n=Count("id")).order_by())
    for error_type, count in rows:
        family.add_metric([error_type or "unknown"], count)
    return family


def gauges():
    counts = work_in_progress()
    active = GaugeMetricFamily("imagineer_jobs_active", "Generation jobs running now "
                               "(queued ones: imagineer_queue_depth).")
    active.add_metric([], counts["generation"][Status.RUNNING])
    queued = GaugeMetricFamily("imagineer_queue_depth", "Generation jobs and training runs "
                               "waiting for a worker.", labels=["queue"])
    for name, by_status in counts.items():
        queued.add_metric([name], by_status[Status.QUEUED])
    training = GaugeMetricFamily("imagineer_training_runs_active", "Training runs running now.")
    training.add_metric([], counts["training"][TrainingRun.Status.RUNNING])
    workers = GaugeMetricFamily(
        "imagineer_workers_alive", "Worker processes seen within IMAGINEER_HEALTH_WORKER_TIMEOUT, "
        "by cluster.", labels=["cluster"])
    for cluster, count in workers_alive().items():
        workers.add_metric([cluster], count)
    return [active, queued, training, workers]


class DatabaseCollector:
    """Every figure, read from the database at scrape time."""

    def collect(self):
        yield submitted()
        yield durations()
        yield errors()
        yield from gauges()


# auto_describe off: registering must not query the database (at import time).
registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseCollector())


def authorized(request, token):
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


@never_cache
@require_safe
def metrics(request):
    """The figures in Prometheus' text format; off (404) without IMAGINEER_METRICS_TOKEN."""
    token = settings.IMAGINEER_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    if not authorized(request, token):
        response = HttpResponse("Send Authorization: Bearer <IMAGINEER_METRICS_TOKEN>.\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
