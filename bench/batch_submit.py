"""Benchmark: submitting a batch of 100 and 1,000 items, before and after the bulk writes.

    python bench/batch_submit.py                 # SQLite (a fresh file under var/bench/)
    python bench/batch_submit.py --quick         # one run of each instead of three
    python bench/batch_submit.py --database postgres://postgres@127.0.0.1:5432/imagineer_bench_batch

`generation.submit.submit_batch` checks every item with the one validator
(validate_generation) and writes the batch, its album and every job. "before" is the code
as it was until 2026-11-27 (commit 61497b3, read from git: `submit_batch_before`): each
item validated with its own reads of the site settings and the default model, each job
written on its own (an INSERT, a LoRA INSERT, a counter UPDATE), and the token of each job
let into the queue (up to max_queue, 100) queued in its own transaction at commit.
"after" is the current `submit_batch`: the shared reads once, the jobs and their LoRAs in
bulk INSERTs, the counter once, the tokens in one transaction. Both run in the same
process, alternately, on the same database; each run's rows are deleted before the next
(not timed). The set has one LoRA, as a set made for a style would. Results go to
docs/performance.md.
"""

import argparse
import logging
import os
import statistics
import time
import warnings

from benchlib import ROOT, VAR, print_table

SIZES = (100, 1000)


def setup_django(url):
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = os.environ.get("DJANGO_DEBUG") or "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")
    os.environ["IMAGINEER_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    warnings.filterwarnings("ignore", "No directory at")
    logging.getLogger("django-q").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def fresh_database(url):
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


BEFORE = "61497b3"  # main before the bulk writes


def submit_batch_before():
    """submit_batch as of BEFORE, its module read from git and loaded beside the current
    one (generation.submit_before), with the token of each job let into the queue queued
    in its own transaction at commit, as tasks.let_held_jobs_in did then."""
    import importlib.util
    import subprocess
    import sys

    from django.db import transaction

    from generation.limits import release_held_jobs
    from generation.tasks import enqueue_job_token

    source = subprocess.run(["git", "show", f"{BEFORE}:generation/submit.py"],  # noqa: S603, S607
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("generation.submit_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "generation"
    sys.modules[spec.name] = module
    exec(compile(source, f"{BEFORE}:generation/submit.py", "exec"), module.__dict__)  # noqa: S102

    def let_held_jobs_in():
        with transaction.atomic():
            released = release_held_jobs()
            for _ in released:
                transaction.on_commit(enqueue_job_token)
        return released

    module.let_held_jobs_in = let_held_jobs_in
    return module.submit_batch


def prepare():
    """An editor, a base model, a LoRA and one prompt set per size."""
    from django.contrib.auth import get_user_model

    from accounts.roles import set_role
    from generation.models import ModelVersion, PromptSet, PromptSetLora

    user = get_user_model().objects.create_user("bench-editor", "bench@example.com")
    set_role(user, "editor")
    ModelVersion.objects.create(name="base", kind="base", source="base", family="sd15",
                                is_default=True)
    lora = ModelVersion.objects.create(name="style", kind="lora", source="style.safetensors",
                                       family="sd15")
    sets = {}
    for size in SIZES:
        prompt_set = PromptSet.objects.create(name=f"cards {size}", width=64, height=64,
                                              prompt_template="card number {n}")
        prompt_set.import_csv("n\n" + "\n".join(str(n) for n in range(size)) + "\n")
        PromptSetLora.objects.create(prompt_set=prompt_set, lora=lora, weight=0.8)
        sets[size] = prompt_set
    return user, sets


def clean_up():
    from albums.models import Album
    from generation.models import Batch, Job

    Job.objects.all().delete()
    Batch.objects.all().delete()
    Album.objects.all().delete()


def timed(submit, user, prompt_set):
    """(seconds, SQL statements) of one submit, the queue tokens queued at commit included."""
    from django.db import connection

    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        batch = submit(user, prompt_set)
        seconds = time.perf_counter() - started
    if batch.jobs.count() != prompt_set.items.count():
        raise SystemExit(f"{submit.__module__}.submit_batch wrote {batch.jobs.count()} jobs")
    clean_up()
    return seconds, len(statements)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each, not three")
    parser.add_argument("--database", default=f"sqlite:///{VAR / 'batch_submit.sqlite3'}")
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    fresh_database(args.database)
    setup_django(args.database)
    from django.conf import settings

    from generation.submit import submit_batch

    settings.IMAGINEER_BATCHES_PER_HOUR = 10_000
    user, sets = prepare()
    old_submit = submit_batch_before()
    repeats = 1 if args.quick else 3
    rows = []
    for size in SIZES:
        runs = {"before": [], "after": []}
        queries = {}
        for _ in range(repeats):
            for name, submit in (("before", old_submit), ("after", submit_batch)):
                seconds, count = timed(submit, user, sets[size])
                runs[name].append(seconds)
                queries[name] = count
        before, after = (statistics.median(runs[name]) for name in ("before", "after"))
        rows.append([f"{size:,}", f"{before:.2f} s", queries["before"], f"{after:.2f} s",
                     queries["after"], f"{before / after:.1f}x",
                     f"{after / size * 1000:.2f} ms"])
    engine = "PostgreSQL" if args.database.startswith("postgres") else "SQLite"
    print_table(f"Batch submit ({engine}, median of {repeats})",
                ["items", "before", "statements", "after", "statements", "speed-up",
                 "after, per item"], rows)


if __name__ == "__main__":
    main()
