"""Benchmark: the library at a million images, on PostgreSQL and on SQLite (issue 20).

    python bench/library_scale.py              # both databases, one after the other
    python bench/library_scale.py --only sqlite --images 100000   # smaller, one database

Each database is made afresh and filled inside the database (not timed): one
`INSERT ... SELECT` over a counting series per table, copying a template row made through
the ORM, so every column is what the models write. 1,000,000 images by ten users (half
captioned, one in fifty NSFW; every prompt says "lighthouse", ten in a million
"zeppelin"), 10,000 albums (half public) of 100 images each, a "big" public album of a
tenth of the images, and 100,000 jobs of the viewer who signs in. Then ANALYZE.

Each request of the issue's table goes through django.test.Client, signed in as that
viewer (who owns a tenth of the albums): p50/p95 over --repeat requests, the number of
queries, and the plan (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite) of
the request's main query (its longest SQL: the page's rows). The databases are deleted at
the end (--keep keeps them). --seed-only seeds and keeps them; --reuse measures databases
kept before (migrating them first), so a million rows are seeded once. Figures go to
docs/performance.md.
"""

# ruff: noqa: S608 (the seeding SQL is the script's own: table names and numbers, no input)

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import VAR, print_table

POSTGRES = "postgres://postgres@127.0.0.1:5432/imagineer_bench_library"
SQLITE = VAR / "library.sqlite3"
USERS = 10


def recreate(url):
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(path.name + "*"):  # the file, -wal and -shm
            stale.unlink()
        return
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop(url):
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        return
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


def setup_django(url):
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = os.environ.get("DJANGO_DEBUG") or "1"  # a development run
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["IMAGINEER_LOG_LEVEL"] = "WARNING"
    import logging
    import warnings

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    warnings.filterwarnings("ignore", "No directory at")
    logging.getLogger("security").setLevel(logging.WARNING)
    logging.getLogger("access").setLevel(logging.WARNING)
    settings.DEBUG = False
    call_command("migrate", verbosity=0)


class Sql:
    """What differs between the two databases in the seeding SQL."""

    def __init__(self, vendor):
        self.vendor = vendor

    def series(self, count):
        """A CTE `s(i)` counting 0..count-1."""
        return (f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s "
                f"WHERE i < {count - 1})")

    def moment(self, seconds):
        """A time `seconds` (an SQL expression) after 2026-01-01."""
        if self.vendor == "postgresql":
            return f"(TIMESTAMPTZ '2026-01-01 00:00:00+00' + ({seconds}) * INTERVAL '1 second')"
        return f"datetime('2026-01-01', '+' || ({seconds}) || ' seconds')"

    def text(self, number):
        return f"CAST({number} AS TEXT)"


def clone(table, template_id, count, overrides):
    """INSERT `count` copies of row `template_id` of `table`, with `overrides` {column: SQL
    over the counter `s.i` and the template `t`} instead of the template's values."""
    from django.db import connection

    sql = Sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        columns = [column[0] for column in cursor.description
                   if column[0] not in ("id", "search_document")]  # the latter: a trigger's
        values = [overrides.get(column, f"t.{column}") for column in columns]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) {sql.series(count)} "
            f"SELECT {', '.join(values)} FROM s, {table} t WHERE t.id = {template_id}")


def seed(images, albums, jobs):
    """Fill the database; the viewer who signs in, the big album, an image at half depth."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts.roles import set_role
    from albums.models import Album, AlbumImage, Image, Label
    from generation.models import Job, ModelVersion

    sql = Sql(connection.vendor)
    users = []
    for n in range(USERS):
        user = get_user_model().objects.create_user(f"bench-{n}", f"bench-{n}@example.com")
        set_role(user, "viewer")
        users.append(user)
    first_user = users[0].pk
    with transaction.atomic():
        template = Image.objects.create(
            file="images/bench/0.png", thumbnail="thumbnails/bench/0.webp", width=512,
            height=512, size_bytes=400_000, format="PNG", sha256="0" * 64,
            source=Image.Source.GENERATED, prompt="", params={"steps": 25}, created_by=users[0])
        i = "s.i"
        clone("albums_image", template.pk, images, {
            "file": f"'images/bench/' || {sql.text(i)} || '.png'",
            "thumbnail": f"'thumbnails/bench/' || {sql.text(i)} || '.webp'",
            "sha256": f"'bench ' || {sql.text(i)}",
            "prompt": (f"'a lighthouse, study ' || {sql.text(i)} || "
                       f"CASE WHEN {i} % 100000 = 7 THEN ' with a zeppelin' ELSE '' END"),
            "nsfw": f"({i} % 50 = 0)",
            "created_by_id": f"{first_user} + {i} % {USERS}",
            "created_at": sql.moment(i),
        })
        template.delete()
        low = Image.objects.order_by("pk").values_list("pk", flat=True).first()
        postgresql = connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            if postgresql:  # one set-based re-index below, not one UPDATE per caption
                cursor.execute("SET session_replication_role = replica")  # triggers off
            cursor.execute(
                "INSERT INTO albums_label (image_id, text, kind, source, created_by_id, "
                "created_at) SELECT id, 'a lighthouse at dusk, number ' || "
                f"{sql.text('id')}, 'caption', 'manual', NULL, created_at FROM albums_image "
                "WHERE id % 2 = 0")
            if postgresql:
                cursor.execute("UPDATE albums_image SET search_document = "
                               "albums_image_document(id, prompt) WHERE id % 2 = 0")
                cursor.execute("SET session_replication_role = DEFAULT")
        template = Album.objects.create(name="template", slug="template", owner=users[0])
        clone("albums_album", template.pk, albums, {
            "name": f"'Album ' || {sql.text(i)}", "slug": f"'album-' || {sql.text(i)}",
            "owner_id": f"{first_user} + {i} % {USERS}",
            "visibility": f"CASE WHEN {i} % 2 = 1 THEN 'public' ELSE 'private' END",
            "created_at": sql.moment(i), "updated_at": sql.moment(i),
        })
        template.delete()
        first_album = Album.objects.order_by("pk").values_list("pk", flat=True).first()
        share = images // albums
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO albums_albumimage (album_id, image_id, position, added_by_id, "
                f"added_at) SELECT {first_album} + (id - {low}) / {share}, id, "
                f"(id - {low}) % {share}, NULL, created_at FROM albums_image "
                f"WHERE id - {low} < {albums * share}")
        big = Album.objects.create(name="Big", slug="big", owner=users[1], visibility="public")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO albums_albumimage (album_id, image_id, position, added_by_id, "
                f"added_at) SELECT {big.pk}, id, id - {low}, NULL, created_at "
                f"FROM albums_image WHERE id - {low} < {images // 10}")
        model = ModelVersion.objects.create(name="base", kind="base", source="base",
                                            is_default=True)
        template = Job.objects.create(
            owner=users[0], owner_role="viewer", prompt="", model=model, width=512,
            height=512, steps=25, guidance_scale=7.5, seed=1, scheduler="pndm",
            status="succeeded")
        clone("generation_job", template.pk, jobs, {
            "prompt": f"'a card number ' || {sql.text(i)}", "seed": i,
            "queued_at": sql.moment(f"{i} * 300"),
        })
        template.delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    if (AlbumImage.objects.filter(album=big).count(), Label.objects.count()) != (
            images // 10, images // 2):
        raise SystemExit("the seeding went wrong: the big album or the captions are short")
    middle = Image.objects.get(pk=low + images // 2)
    return users[0], big, middle


def kept():
    """The viewer, the big album and the image at half depth of a database seeded before."""
    from django.contrib.auth import get_user_model

    from albums.models import Album, Image

    images = Image.objects.order_by("pk").values_list("pk", flat=True)
    low, count = images.first(), images.count()
    return (get_user_model().objects.get(username="bench-0"), Album.objects.get(slug="big"),
            Image.objects.get(pk=low + count // 2))


def measure(client, url, repeat):
    """(status, queries, p50 ms, p95 ms, the SQL of the page's own query) of GET url."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm
    reset_queries()  # as each request will: the context's start must be the log's
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).status_code
    captured = list(queries.captured_queries)  # now: the next request clears the log
    slowest = max(captured, key=lambda query: len(query["sql"]))["sql"]  # the page's own
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    p95 = statistics.quantiles(times, n=20)[18]
    return status, len(captured), statistics.median(times), p95, slowest


def explain(sql):
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
            return [line for (line,) in cursor.fetchall()]
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [f"{'  ' * (parent > 0)}{detail}" for _, parent, _, detail in cursor.fetchall()]


def run(url, args):
    started = time.perf_counter()
    if not args.reuse:
        recreate(url)
    setup_django(url)  # on a kept database: its later migrations
    from django.db import connection
    from django.test import Client

    from core.pagination import encode_cursor

    if args.reuse:
        viewer, big, middle = kept()
    else:
        viewer, big, middle = seed(args.images, args.albums, args.jobs)
        seeded = time.perf_counter() - started
        print(f"{connection.vendor}: seeded {args.images:,} images, {args.albums:,} albums, "
              f"{args.jobs:,} jobs in {seeded:.0f} s", flush=True)
        if args.seed_only:
            return
    client = Client()
    client.force_login(viewer)
    deep = encode_cursor([middle.created_at, middle.pk])
    small = big.pk - 1  # the last of the 100-image albums
    requests = [
        ("`/api/images/`, first page", "/api/images/"),
        ("`/api/images/`, a deep page (half way)", f"/api/images/?cursor={deep}"),
        ("`/api/images/?album=`, 100 images", f"/api/images/?album={small}"),
        (f"`/api/images/?album=`, big album ({args.images // 10:,} images)",
         f"/api/images/?album={big.pk}"),
        ("search, common word (`lighthouse`)", "/api/images/?search=lighthouse"),
        ("search, rare word (`zeppelin`)", "/api/images/?search=zeppelin"),
        ("search, as you type (`lightho*`)", "/api/images/?search=lightho*"),
        ("search, caption word (`dusk`)", "/api/images/?search=dusk"),
        ("album page, big album", "/albums/big/"),
        ("album page, 100 images", f"/albums/album-{args.albums - 1}/"),
        ("album list page", "/albums/"),
        (f"`/api/jobs/`, {args.jobs:,} jobs of the viewer", "/api/jobs/"),
    ]
    rows, plans = [], []
    for what, path in requests:
        status, queries, p50, p95, slowest = measure(client, path, args.repeat)
        rows.append([what, status, queries, f"{p50:.1f}", f"{p95:.1f}"])
        plans.append((what, explain(slowest)))
        print(f"  {what}: {p50:.1f} ms", flush=True)
    print_table(
        f"{connection.vendor}: {args.images:,} images, {args.albums:,} albums, {args.jobs:,} "
        f"jobs; {args.repeat} requests per row, signed in as a viewer",
        ["request", "status", "queries", "p50 ms", "p95 ms"], rows)
    for what, plan in plans:
        print(f"\nPlan of the main query of {what}:\n" + "\n".join(
            f"    {line}" for line in plan))
    connection.close()
    if not args.keep and not args.reuse:
        drop(url)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--albums", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50, help="requests per row")
    parser.add_argument("--postgres", default=POSTGRES, help="a database to make afresh")
    parser.add_argument("--sqlite", type=Path, default=SQLITE)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--seed-only", action="store_true",
                        help="seed and keep the databases, measure nothing")
    parser.add_argument("--reuse", action="store_true",
                        help="measure databases kept by an earlier run (same sizes), unseeded")
    args = parser.parse_args()
    if args.only:
        run(args.postgres if args.only == "postgresql" else f"sqlite:///{args.sqlite}", args)
        return
    for vendor in ("postgresql", "sqlite"):  # one process each: Django sets up once
        subprocess.run([sys.executable, __file__, "--only", vendor, *sys.argv[1:]],  # noqa: S603
                       check=True)


if __name__ == "__main__":
    main()
