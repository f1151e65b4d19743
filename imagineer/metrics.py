"""/metrics: Prometheus figures of jobs, training runs and workers.

Workers are other processes (and other machines), so no figure is kept in a process's
memory: the collector reads them from the database at each scrape. The totals come from
the Counter table (generation.models.Counter), which the submit rule and the jobs' and
runs' state changes add to as they commit: they never go down, not even when old jobs
are deleted, and reading them costs one query on a table of a few dozen rows. The
gauges (queue depth, jobs running, workers alive) count the active rows, which indexes
find without reading the finished ones: a scrape stays cheap with a million jobs
(bench/metrics_scrape.py, docs/performance.md).

The collector lives on its own registry, not prometheus_client's global one: /metrics
shows these figures only, the same from every web process.
"""

import hmac

from django.conf import settings
from django.db.models import Count
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

from generation.limits import REJECTION_REASONS
from generation.models import DURATION_BUCKETS, Counter, Job, Status
from training.models import TrainingRun
from workers.models import WorkerHeartbeat

ENDED = [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]


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


def counter(totals, name, metric, documentation, labels, always=()):
    """A counter family from the Counter rows named `name`; `always`: label values
    shown at 0 before anything was counted, so that dashboards find the series."""
    family = CounterMetricFamily(metric, documentation, labels=labels)
    found = {tuple(row[label] for label in labels): value
             for row, value in totals.get(name, [])}
    for values in always:
        found.setdefault(values, 0)
    for values, value in sorted(found.items()):
        family.add_metric(list(values), value)
    return family


def durations(totals):
    family = HistogramMetricFamily(
        "imagineer_job_duration_seconds", "Time from start to end of finished generation "
        "jobs (their last attempt), by how they ended.", labels=["status"])
    counts = {}
    for row, value in totals.get("job_duration_bucket", []):
        counts.setdefault(row["status"], {})[row["le"]] = value
    sums = {row["status"]: value / 1000 for row, value in
            totals.get("job_duration_milliseconds", [])}
    for status, by_bound in sorted(counts.items()):
        cumulative, buckets = 0, []
        for bound in DURATION_BUCKETS:
            cumulative += by_bound.get(str(bound), 0)
            buckets.append((floatToGoString(bound), cumulative))
        buckets.append(("+Inf", cumulative + by_bound.get("+Inf", 0)))
        family.add_metric([status], buckets, sum_value=sums.get(status, 0.0))
    return family


def totals():
    found = Counter.totals()
    yield counter(found, "jobs_submitted", "imagineer_jobs_submitted",
                  "Generation jobs submitted, by kind (single or part of a batch) and the "
                  "submitter's role then.", ["kind", "role"])
    yield counter(found, "jobs_rejected", "imagineer_jobs_rejected",
                  "Submissions refused (a single job or a whole batch), by reason: invalid "
                  "parameters, rate_limited, cap (the user's active jobs), queue_full.",
                  ["reason"], always=[(reason,) for reason in REJECTION_REASONS])
    yield counter(found, "jobs_finished", "imagineer_jobs_finished",
                  "Generation jobs ended, by how they ended.", ["status"],
                  always=[(status,) for status in ENDED])
    yield durations(found)
    yield counter(found, "generation_errors", "imagineer_generation_errors",
                  "Failed generation jobs, by the class of the error that failed them.",
                  ["error_type"])
    yield counter(found, "training_runs_finished", "imagineer_training_runs_finished",
                  "Training runs ended, by how they ended.", ["status"],
                  always=[(status,) for status in ENDED])


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
        yield from totals()
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
