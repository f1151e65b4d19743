"""Benchmark: a /metrics scrape with a million generation jobs on PostgreSQL.

    python bench/metrics_scrape.py                  # 1,000,000 jobs (seeding: about a minute)
    python bench/metrics_scrape.py --quick          # 100,000 jobs
    python bench/metrics_scrape.py --database postgres://postgres@127.0.0.1:5432/imagineer_bench_metrics

Makes the database afresh (drop, create, migrate), then fills it in bulk, in SQL on the
server (one INSERT ... SELECT over generate_series; not timed): the jobs of a busy year,
nearly all finished (90% succeeded, 7% failed with one of five error types, 3%
cancelled), a queue at its default cap (100 queued) and 4 running, one job in ten part of
a batch; 200 training runs; 8 live workers. The totals are made from those rows by the
migration that introduced the counters (timed: what upgrading costs), and the tables are
analyzed as autovacuum would have.

Then it scrapes /metrics through django.test.Client, as Prometheus would (bearer token),
--repeat times, and prints the p50, p95 and slowest scrape, the queries of one scrape,
and each query's plan (EXPLAIN ANALYZE): none may read the finished jobs. The goal is a
scrape of 100 ms or less. Results go to docs/performance.md.
"""

import argparse
import importlib
import logging
import os
import statistics
import time
import warnings

from benchlib import print_table

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/imagineer_bench_metrics"
TOKEN = "bench-metrics-token"  # noqa: S105 (the benchmark's own throwaway database)


def recreate_database(url):
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(url):
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = os.environ.get("DJANGO_DEBUG") or "1"  # a development run
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["IMAGINEER_LOG_LEVEL"] = "WARNING"
    os.environ["IMAGINEER_METRICS_TOKEN"] = TOKEN
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    warnings.filterwarnings("ignore", "No directory at")  # no collectstatic: no static files
    logging.getLogger("security").setLevel(logging.WARNING)
    logging.getLogger("access").setLevel(logging.WARNING)
    settings.DEBUG = False
    call_command("migrate", verbosity=0)


def seed(jobs):
    """Fill the tables; (seconds it took, seconds of the counters' migration)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from accounts.roles import set_role
    from albums.models import Album
    from generation.models import Batch, ModelVersion, PromptSet
    from training.models import TrainingRun
    from workers.models import WorkerHeartbeat

    started = time.perf_counter()
    users = []
    for n, role in enumerate(["viewer"] * 6 + ["editor"] * 3 + ["admin"]):
        user = get_user_model().objects.create_user(f"bench-{n}", f"bench-{n}@example.com")
        set_role(user, role)
        users.append(user)
    model = ModelVersion.objects.create(name="base", kind="base", source="base",
                                        is_default=True)
    prompt_set = PromptSet.objects.create(name="cards", prompt_template="{card}")
    batch = Batch.objects.create(prompt_set=prompt_set, owner=users[6], total=jobs // 10,
                                 status="succeeded")
    album = Album.objects.create(name="training", owner=users[6])
    TrainingRun.objects.bulk_create(
        TrainingRun(name=f"run {n}", album=album, base_model=model, owner=users[6 + n % 4],
                    status=["succeeded", "failed", "cancelled", "queued", "running"][n % 5])
        for n in range(200))
    for n in range(8):
        WorkerHeartbeat.objects.create(name=f"gpu-{n}:1{n}", host=f"gpu-{n}", pid=10 + n,
                                       cluster="training" if n == 7 else "imagineer")
    # g: 1..jobs. The last 104 are the active ones; of the rest, by mod(g, 100): 0-89
    # succeeded, 90-96 failed, 97-99 cancelled. Times go back a year from now.
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO generation_job (
                owner_id, owner_role, batch_id, batch_position, prompt, negative_prompt,
                model_id, width, height, steps, guidance_scale, seed, scheduler, num_images,
                status, progress, queued_at, started_at, finished_at, heartbeat_at,
                attempts, error, error_type, worker)
            SELECT (%(owners)s::bigint[])[mod(g, %(users)s) + 1],
                   (%(roles)s::text[])[mod(g, %(users)s) + 1],
                   CASE WHEN mod(g, 10) = 0 THEN %(batch)s END, g, 'a card number ' || g, '',
                   %(model)s, 512, 512, 25, 7.5, g, 'pndm', 1,
                   s.status, CASE WHEN s.status = 'succeeded' THEN 1.0 ELSE 0.0 END,
                   q.at, CASE WHEN s.status <> 'queued' THEN q.at + interval '5 seconds' END,
                   CASE WHEN s.status NOT IN ('queued', 'running')
                        THEN q.at + interval '5 seconds' + mod(g, 120) * interval '1 second'
                   END,
                   CASE WHEN s.status = 'running' THEN now() END,
                   CASE WHEN s.status = 'queued' THEN 0 ELSE 1 END,
                   CASE WHEN s.status = 'failed' THEN 'it broke' ELSE '' END,
                   CASE WHEN s.status = 'failed'
                        THEN (ARRAY['OutOfMemoryError', 'OSError', 'ValueError',
                                    'RuntimeError', 'WorkerStopped'])[mod(g, 5) + 1]
                        ELSE '' END,
                   CASE WHEN s.status = 'running' THEN 'gpu-' || mod(g, 4) || ':1' ELSE '' END
            FROM generate_series(1, %(jobs)s) AS g,
                 LATERAL (SELECT CASE WHEN g > %(jobs)s - 100 THEN 'queued'
                                      WHEN g > %(jobs)s - 104 THEN 'running'
                                      WHEN mod(g, 100) < 90 THEN 'succeeded'
                                      WHEN mod(g, 100) < 97 THEN 'failed'
                                      ELSE 'cancelled' END AS status) AS s,
                 LATERAL (SELECT %(now)s - (%(jobs)s - g) * interval '31 seconds' AS at) AS q
        """, {"owners": [user.pk for user in users], "roles": [user.role for user in users],
              "users": len(users), "batch": batch.pk, "model": model.pk, "jobs": jobs,
              "now": timezone.now()})
    seeded = time.perf_counter() - started

    from django.apps import apps

    migration = importlib.import_module("generation.migrations.0006_counter")
    began = time.perf_counter()
    migration.count_existing_jobs(apps, None)
    importlib.import_module("training.migrations.0003_count_finished_runs") \
        .count_existing_runs(apps, None)
    counted = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return seeded, counted


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    if response.status_code != 200:
        raise SystemExit(f"/metrics answered {response.status_code}")
    return response


def explain(sql):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return [line for (line,) in cursor.fetchall()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 jobs")
    parser.add_argument("--jobs", type=int, help="jobs to seed (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=50, help="scrapes to time")
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="a PostgreSQL URL; the database is dropped and made again")
    args = parser.parse_args()
    jobs = args.jobs or (100_000 if args.quick else 1_000_000)

    recreate_database(args.database)
    setup_django(args.database)
    print(f"seeding {jobs:,} jobs ...", flush=True)
    seeded, counted = seed(jobs)
    print(f"seeded in {seeded:.1f} s; the counters' migration took {counted:.2f} s", flush=True)

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    scrape(client)  # warm: imports, the connection, the caches
    seconds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        scrape(client)
        seconds.append(time.perf_counter() - start)
    with CaptureQueriesContext(connection) as queries:
        body = scrape(client).content.decode()
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]

    from generation.models import Job

    print_table(
        f"A /metrics scrape with {Job.objects.count():,} jobs (PostgreSQL)",
        ["p50", "p95", "slowest", "queries", "samples"],
        [[f"{statistics.median(seconds) * 1000:.1f} ms", f"{p95 * 1000:.1f} ms",
          f"{seconds[-1] * 1000:.1f} ms", len(queries),
          sum(1 for line in body.splitlines() if line and not line.startswith("#"))]],
    )
    print(f"\nSeeding (not timed above): {seeded:.1f} s; the counters' migration on these "
          f"rows: {counted:.2f} s. {args.repeat} scrapes.\n")
    for query in queries.captured_queries:
        plan = explain(query["sql"])
        print(f"- {query['sql'][:160]}")
        for line in plan:
            if "Scan" in line or line.startswith("Execution Time"):
                print(f"    {line.strip()}")


if __name__ == "__main__":
    main()
