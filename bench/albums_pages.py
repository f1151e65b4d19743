"""Benchmark: the album pages and the images and albums API on a large library.

    python bench/albums_pages.py           # 100,000 images, 1,000 albums (about a minute)
    python bench/albums_pages.py --quick   # 10,000 images, 200 albums

Seeds a separate SQLite database, var/bench/albums.sqlite3 (rebuilt on each run), with
rows only: the file names are made up, since list pages and the API read no files. Half
the images have a caption, one in fifty is NSFW; each album holds its share of the images
and one "big" album holds a tenth of them. Albums are made in two steps (a tenth, then
the rest), so that each album-count-dependent request is measured at both counts.

For each request it prints the SQL queries it made (CaptureQueriesContext) and the p50
and p95 latency over --repeat runs through django.test.Client, signed in as a viewer
(who owns a tenth of the albums; half the albums are public): the visibility filters run.
The query counts must not grow with the page size or the number of albums. Requests to
endpoints that do not exist here are listed as missing. Results go to docs/performance.md.
"""

import argparse
import hashlib
import logging
import os
import statistics
import time
from pathlib import Path

from benchlib import VAR, print_table


def setup_django(database):
    database.parent.mkdir(parents=True, exist_ok=True)
    for path in database.parent.glob(database.name + "*"):  # the file, -wal and -shm
        path.unlink()
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["DJANGO_DEBUG"] = os.environ.get("DJANGO_DEBUG") or "1"  # a development run
    os.environ["IMAGINEER_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, no emails sent
    logging.getLogger("security").setLevel(logging.WARNING)  # one line per seeded user
    settings.DEBUG = False  # as in production: no query log kept on the side
    call_command("migrate", verbosity=0)


def make_users():
    from django.contrib.auth import get_user_model

    from accounts.roles import set_role

    users = []
    for n in range(10):
        user = get_user_model().objects.create_user(f"bench-{n}", f"bench-{n}@example.com")
        set_role(user, "viewer")
        users.append(user)
    return users


def seed_images(count, users):
    from django.db import transaction

    from albums.models import Image, Label

    with transaction.atomic():
        Image.objects.bulk_create(
            (
                Image(
                    file=f"images/bench/{n}.png",
                    thumbnail=f"thumbnails/bench/{n}.webp",
                    width=512, height=512, size_bytes=400_000, format="PNG",
                    sha256=hashlib.sha256(b"bench %d" % n).hexdigest(),
                    source=Image.Source.GENERATED, prompt=f"a lighthouse, study {n}",
                    params={"steps": 25, "seed": n}, nsfw=n % 50 == 0,
                    created_by=users[n % len(users)],
                )
                for n in range(count)
            ),
            batch_size=5000,
        )
        ids = list(Image.objects.order_by("pk").values_list("pk", flat=True))
        Label.objects.bulk_create(
            (Label(image_id=i, text=f"a lighthouse at dusk, number {i}") for i in ids[::2]),
            batch_size=5000,
        )
    return ids


def seed_albums(image_ids, users, first, last, total):
    """Albums first..last-1 of `total`: album k holds the k-th share of the images."""
    from django.db import transaction

    from albums.models import Album, AlbumImage

    share = len(image_ids) // total
    with transaction.atomic():
        albums = Album.objects.bulk_create(
            Album(
                name=f"Album {k}", slug=f"album-{k}", owner=users[k % len(users)],
                visibility="public" if k % 2 else "private",
            )
            for k in range(first, last)
        )
        AlbumImage.objects.bulk_create(
            (
                AlbumImage(album=album, image_id=image_id, position=position)
                for k, album in zip(range(first, last), albums, strict=True)
                for position, image_id in enumerate(image_ids[k * share:(k + 1) * share])
            ),
            batch_size=5000,
        )


def seed_big_album(image_ids, owner):
    from albums.models import Album

    album = Album.objects.create(name="Big", owner=owner, visibility="public")
    album.add_images(image_ids[: len(image_ids) // 10])
    return album


def measure(client, url, repeat):
    """(status, queries, p50 ms, p95 ms) of GET url."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).status_code
    count = len(queries)  # now: the next request clears the connection's query log
    if status == 404:
        return status, None, None, None
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    p95 = statistics.quantiles(times, n=20)[18] if len(times) > 1 else times[0]
    return status, count, statistics.median(times), p95


class Report:
    HEADERS = ["request", "setting", "status", "queries", "p50 ms", "p95 ms"]

    def __init__(self, client, repeat):
        self.client, self.repeat, self.rows = client, repeat, []

    def row(self, what, setting, url, *, patch=None):
        """Measure url; `patch` = (module, name, value) set for the duration."""
        old = None
        if patch:
            module, name, value = patch
            old = getattr(module, name)
            setattr(module, name, value)
        try:
            status, queries, p50, p95 = measure(self.client, url, self.repeat)
        finally:
            if patch:
                setattr(module, name, old)
        if queries is None:
            self.rows.append([f"{what} `{url}`", setting, f"{status} (missing)", "-", "-", "-"])
        else:
            self.rows.append([f"{what} `{url}`", setting, status, queries, f"{p50:.1f}",
                              f"{p95:.1f}"])
        print(f"  {what}, {setting}: {queries} queries", flush=True)


def album_count_rows(report, albums, pages):
    setting = f"{albums:,} albums"
    for size in (12, 48):
        report.row("album list page", f"{setting}, {size}/page", "/albums/",
                   patch=(pages, "ALBUMS_PER_PAGE", size))
    report.row("albums API", f"{setting}, default page", "/api/albums/")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 images, 200 albums")
    parser.add_argument("--repeat", type=int, default=50, help="requests per row")
    parser.add_argument("--database", type=Path, default=VAR / "albums.sqlite3")
    args = parser.parse_args()
    images, albums = (10_000, 200) if args.quick else (100_000, 1_000)

    setup_django(args.database)
    from django.test import Client

    from albums import views as pages

    started = time.perf_counter()
    users = make_users()
    image_ids = seed_images(images, users)
    seed_albums(image_ids, users, 0, albums // 10, albums)
    print(f"Seeded {images:,} images and {albums // 10:,} albums in "
          f"{time.perf_counter() - started:.0f} s into {args.database}", flush=True)

    client = Client()
    client.force_login(users[0])
    report = Report(client, args.repeat)
    album_count_rows(report, albums // 10, pages)

    seed_albums(image_ids, users, albums // 10, albums, albums)
    big = seed_big_album(image_ids, users[1])
    album_count_rows(report, albums, pages)

    big_pages = len(image_ids) // 10
    for size in (20, 100):
        report.row("album page", f"{big_pages:,} images, {size}/page", f"/albums/{big.slug}/",
                   patch=(pages, "IMAGES_PER_PAGE", size))
    last = big_pages // 100
    report.row("album page, last page", f"page {last}, 100/page",
               f"/albums/{big.slug}/?page={last}", patch=(pages, "IMAGES_PER_PAGE", 100))
    report.row("album page", f"{len(image_ids) // albums} images, 60/page", "/albums/album-1/")
    for size in (20, 100):
        report.row("images API", f"{images:,} images, {size}/page",
                   f"/api/images/?page_size={size}")
        report.row("images API, album", f"big album, {size}/page",
                   f"/api/images/?album={big.pk}&page_size={size}")
    report.row("images API, search", "caption or prompt", "/api/images/?search=dusk")
    report.row("image page", "one image", f"/images/{image_ids[len(image_ids) // 2]}/")

    print_table(
        f"Albums: {images:,} images, {albums:,} albums, {args.repeat} requests per row, "
        f"signed in as a viewer ({time.perf_counter() - started:.0f} s in all)",
        Report.HEADERS, report.rows,
    )


if __name__ == "__main__":
    main()
