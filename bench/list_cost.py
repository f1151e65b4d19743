"""Benchmark: what a page of /api/jobs/ and of /api/images/ costs the web process,
before and after the lists stopped repeating per-request work per row (issue 20).

    python bench/list_cost.py                    # SQLite: a small library, made afresh
    python bench/list_cost.py --database postgres://postgres@127.0.0.1:5432/imagineer_bench_lists
    python bench/list_cost.py --reuse --database postgres://.../imagineer_library_bench

The cost of a list page is per page, not per table: a small library (bench/library_scale.py's
seeding: --images, --albums, --jobs) shows it as well as a million rows. The viewer's newest
jobs get two images and a LoRA each, as generated jobs have (the big benchmark's have none).
--reuse measures a database bench/library_scale.py kept instead, as it is.

"before" is the code as of BEFORE (main until the change), put back in the same process
by swapping five functions: each image's two URLs reversed on their own (and twice:
`url` and `thumbnail_url` each computed both); the jobs' page read with its model joined,
every column of its images, and the images and LoRAs prefetched into each job's managers
(Job.objects.shown() reads them into lists); the LoRAs serialized from the manager; the
prefetches run for the page's rows plus the one past it (the one that says whether there
is more); and DRF's own Serializer.to_representation instead of core.api.ReadPlan's.
"after" is the current code. The two take turns, --rounds times --repeat requests each,
so both see the same machine; each request's wall time and the process's CPU time
(time.process_time: the web process's own work, SQLite's included, PostgreSQL's not, and
not the time spent waiting for a CPU on a busy machine) are kept. Both ways' answers are
compared byte for byte first, and the queries counted. Figures go to docs/performance.md.
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

from benchlib import ROOT, print_table
from library_scale import kept, recreate, seed, setup_django

BEFORE = "a81fffb"  # main before the change
SQLITE = "sqlite:///" + str(ROOT / "var" / "bench" / "lists.sqlite3")


def old_module(name, path):
    """The module at `path` as of BEFORE, loaded as `name` beside the current one."""
    source = subprocess.run(["git", "show", f"{BEFORE}:{path}"],  # noqa: S603, S607
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{BEFORE}:{path}", "exec"), module.__dict__)  # noqa: S102
    return module


def ways():
    """{"before": swaps, "after": swaps}: (owner, attribute, value) to set for each way."""
    from django.urls import reverse
    from rest_framework import serializers

    from albums.api import ImageUrls
    from core.api import ReadPlan
    from core.pagination import Pagination
    from generation.api import JobLoraSerializer, JobSerializer, JobViewSet
    from generation.models import Job

    def file_urls(request, image_id):  # albums/api.py as of BEFORE
        def url(name):
            path = reverse(name, args=[image_id])
            return request.build_absolute_uri(path) if request else path

        return url("image_file"), url("image_thumbnail")

    def old_file_urls(self, image_id):
        return file_urls(self.context.get("request"), image_id)

    class OldJobSerializer(JobSerializer):  # generation/api.py as of BEFORE
        loras = JobLoraSerializer(source="joblora_set", many=True)

    def old_jobs(self):  # generation/api.py as of BEFORE
        return (Job.objects.visible_to(self.request.user)
                .select_related("owner", "model")
                .prefetch_related("images", "joblora_set__lora"))

    pages = old_module("core.pagination_before", "core/pagination.py")
    return {
        "before": [(ImageUrls, "file_urls", old_file_urls), (JobViewSet, "get_queryset", old_jobs),
                   (JobViewSet, "get_serializer_class", lambda self: OldJobSerializer),
                   (Pagination, "paginate_queryset", pages.Pagination.paginate_queryset),
                   (ReadPlan, "to_representation", serializers.Serializer.to_representation)],
        "after": [(ImageUrls, "file_urls", ImageUrls.file_urls),
                  (JobViewSet, "get_queryset", JobViewSet.get_queryset),
                  (JobViewSet, "get_serializer_class", JobViewSet.get_serializer_class),
                  (Pagination, "paginate_queryset", Pagination.paginate_queryset),
                  (ReadPlan, "to_representation", ReadPlan.to_representation)],
    }


def use(swaps):
    for owner, attribute, value in swaps:
        setattr(owner, attribute, value)


def give_jobs_images(viewer, count=60):
    """The viewer's newest `count` jobs: two images and a LoRA each."""
    from albums.models import Image
    from generation.models import Job, JobLora, ModelVersion

    base = ModelVersion.objects.get(name="base")
    lora = ModelVersion.objects.create(name="a style", kind="lora", source="bench/lora",
                                       family=base.family)
    jobs = Job.objects.filter(owner=viewer).order_by("-queued_at", "-id")[:count]
    images = list(Image.objects.filter(created_by=viewer).order_by("-pk")[: 2 * count])
    for number, job in enumerate(jobs):
        job.images.add(*images[2 * number: 2 * number + 2])
        JobLora.objects.create(job=job, lora=lora, weight=0.8)


def older_jobs(viewer):
    """The cursor of the viewer's jobs past the newest 100 (those give_jobs_images left)."""
    from core.pagination import encode_cursor
    from generation.models import Job

    job = Job.objects.filter(owner=viewer).order_by("-queued_at", "-id")[100]
    return encode_cursor([job.queued_at, job.pk])


def answer(client, url):
    """(status, body, queries) of GET url."""
    from django.db import connection

    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    return response.status_code, response.content, len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=SQLITE)
    parser.add_argument("--reuse", action="store_true",
                        help="a database bench/library_scale.py kept, measured as it is")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--albums", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--keep", action="store_true", help="keep the database made")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=10, help="requests per round and way")
    args = parser.parse_args()
    if not args.reuse:
        recreate(args.database)
    setup_django(args.database)
    from django.db import connection
    from django.test import Client

    if args.reuse:
        viewer, big, _ = kept()
    else:
        viewer, big, _ = seed(args.images, args.albums, args.jobs)
        give_jobs_images(viewer)
    client = Client()
    client.force_login(viewer)
    requests = [("`/api/jobs/`" + ("" if args.reuse else ", two images and a LoRA a job"),
                 "/api/jobs/"),
                ("`/api/jobs/`, older jobs: no images, no LoRA (as the big benchmark's)",
                 f"/api/jobs/?cursor={older_jobs(viewer)}"),
                ("`/api/images/?album=`, 100 images", f"/api/images/?album={big.pk - 1}"),
                ("`/api/images/`, first page", "/api/images/")]
    switch = ways()
    queries = {}
    for what, url in requests:
        answers = {}
        for way, swaps in switch.items():
            use(swaps)
            answer(client, url)  # warm
            answers[way] = answer(client, url)
        if answers["before"][:2] != answers["after"][:2]:
            raise SystemExit(f"{what}: the answers differ before and after")
        queries[what] = (answers["before"][2], answers["after"][2])
    times = {(what, way): ([], []) for what, _ in requests for way in switch}
    for _ in range(args.rounds):
        for what, url in requests:
            for way, swaps in switch.items():
                use(swaps)
                wall, cpu = times[what, way]
                for _ in range(args.repeat):
                    began, began_cpu = time.perf_counter(), time.process_time()
                    client.get(url)
                    wall.append((time.perf_counter() - began) * 1000)
                    cpu.append((time.process_time() - began_cpu) * 1000)
    rows = []
    for what, _ in requests:
        before, after = times[what, "before"], times[what, "after"]
        row = [what, "{} / {}".format(*queries[what])]
        for series in (before[0], after[0], before[1], after[1]):
            row.append(f"{statistics.median(series):.1f} / "
                       f"{statistics.quantiles(series, n=20)[18]:.1f}")
        row.append(f"{statistics.median(before[1]) / statistics.median(after[1]):.2f}")
        rows.append(row)
    print_table(
        f"{connection.vendor}: {args.rounds} rounds of {args.repeat} requests a way, "
        "alternately, signed in as a viewer (ms, p50 / p95)",
        ["request", "queries before / after", "wall before", "wall after", "CPU before",
         "CPU after", "CPU p50 ratio"], rows)
    connection.close()
    if not args.reuse and not args.keep:
        from library_scale import drop

        drop(args.database)


if __name__ == "__main__":
    sys.exit(main())
