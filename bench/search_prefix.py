"""Benchmark: SQLite search with a prefix longer than the FTS5 prefix indexes, read through
its first four letters (albums/search.py, `sqlite_candidates`) against the prefix read as
typed (what it was before: FTS5 merges every match of the prefix first), alternately in
one process on one database, signed in as bench/library_scale.py's viewer.

    python bench/library_scale.py --only sqlite --seed-only   # once: the million rows
    python bench/search_prefix.py [--repeat 20]

Each search's answers are checked to be the same both ways before it is timed. Figures go
to docs/performance.md (the million-image section).
"""

import argparse
import statistics
import time

import library_scale
from benchlib import print_table

SEARCHES = ["lighthouse", "lightho*", "study lighth", "dusk", "zeppelin", "lighthouse dusk"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="requests per row and way")
    args = parser.parse_args()
    library_scale.setup_django(f"sqlite:///{library_scale.SQLITE}")
    from django.test import Client

    from albums import search

    indexed = search.PREFIX_INDEXED
    ways = {"through four letters": indexed, "as typed": 10**6}  # no prefix that long
    viewer, _, _ = library_scale.kept()
    client = Client()
    client.force_login(viewer)
    paths = [f"/api/images/?search={text}" for text in SEARCHES] + ["/api/images/"]
    for path in paths:
        answers = []
        for length in ways.values():
            search.PREFIX_INDEXED = length
            answers.append([row["id"] for row in client.get(path).json()["results"]])
        if answers[0] != answers[1]:
            raise SystemExit(f"{path}: the two ways answer differently")
    times = {(path, way): [] for path in paths for way in ways}
    for round_ in range(args.repeat):
        for path in paths:
            for way in (list(ways) if round_ % 2 else list(ways)[::-1]):  # alternately first
                search.PREFIX_INDEXED = ways[way]
                began = time.perf_counter()
                client.get(path)
                times[path, way].append((time.perf_counter() - began) * 1000)
    search.PREFIX_INDEXED = indexed

    def cell(values):
        return f"{statistics.median(values):.1f} / {statistics.quantiles(values, n=20)[18]:.1f}"

    def ratio(path):
        before, after = (statistics.median(times[path, way]) for way in ("as typed",
                                                                         "through four letters"))
        return f"{before / after:.1f}"

    rows = [[path.removeprefix("/api/images/") or "(the first page)",
             cell(times[path, "as typed"]), cell(times[path, "through four letters"]),
             ratio(path)] for path in paths]
    print_table(f"SQLite search, {args.repeat} requests per row and way, alternately",
                ["request", "as typed p50 / p95 ms", "through four letters p50 / p95 ms",
                 "p50 ratio"], rows)


if __name__ == "__main__":
    main()
