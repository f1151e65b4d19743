"""Fuzz the API with schemathesis: every operation of /api/schema/, first with a viewer's
token, then with an admin's, against a real web server. Prints a table (operations fuzzed,
examples sent, requests served, 5xx answers, schema violations, other failures, per token)
and the failing cases; exits non-zero when there is any.

    .venv/bin/python bench/fuzz.py [--examples 100] [--seed N] [--database postgres://...]

It migrates its own database (SQLite under var/fuzz/, or --database; made again each run),
registers the demo model (`manage.py create_demo_model`), makes a viewer and an admin with
tokens, starts gunicorn, and puts an album with images, a LoRA, a prompt set, a batch,
jobs, a training run and a caption run in it through the API (imagineer/fuzzing.py). No
worker runs: jobs stay queued. The per-user generation limits are raised for this run only
(see SERVER_ENV in imagineer/fuzzing.py). Each token's output and JSON report are kept in
var/fuzz/runs/.
"""

import argparse
import logging
import os
import secrets
import shutil
import subprocess
import sys

from benchlib import ROOT, print_table

from imagineer.fuzzing import (
    CHECKS,
    SERVER_ENV,
    TABLE_HEADERS,
    WebServer,
    fuzz,
    seed,
    table_rows,
)

VAR = ROOT / "var" / "fuzz"
MODELS = VAR / "models"  # kept between runs: the demo model, the captioner, the LoRA


def options():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100,
                        help="most examples per operation in each generating phase")
    parser.add_argument("--phases", default=None,
                        help="schemathesis phases (default: all: examples, coverage, "
                             "fuzzing, stateful)")
    parser.add_argument("--checks", default="",
                        help="more schemathesis checks, comma-separated, e.g. "
                             "object_level_authorization")
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed")
    parser.add_argument("--database", default=None, metavar="URL",
                        help="a PostgreSQL database to use instead of var/fuzz/fuzz.sqlite3, "
                             "e.g. postgres://postgres@127.0.0.1:5432/imagineer_fuzz "
                             "(dropped and made again)")
    return parser.parse_args()


def manage(*args, env):
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,  # noqa: S603 (our manage.py, an argument list: no shell)
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def models():
    """The tiny captioner (IMAGINEER_CAPTION_MODEL: starting a caption run needs one) and a
    random LoRA of the demo model to upload, built once."""
    from albums.captioning import build_tiny_captioning_model
    from generation.engine.lora import make_random_lora

    captioner = MODELS / "tiny-captioner"
    if not (captioner / "config.json").exists():
        build_tiny_captioning_model(captioner)
    lora = MODELS / "inkwash.safetensors"
    if not lora.exists():
        make_random_lora(MODELS / "demo", lora, seed=1)
    return captioner, lora


def users():
    """A viewer and an admin, with their API tokens."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from accounts.roles import ADMIN, VIEWER, set_role

    tokens = {}
    for name, role in (("fuzz-viewer", VIEWER), ("fuzz-admin", ADMIN)):
        user = get_user_model().objects.create_user(name, f"{name}@example.com",
                                                    secrets.token_urlsafe(16))
        set_role(user, role)
        tokens[role] = Token.objects.create(user=user).key
    connection.close()
    return tokens


def main():
    args = options()
    for leftover in ("fuzz.sqlite3", "fuzz.sqlite3-wal", "fuzz.sqlite3-shm", "media", "runs",
                     "logs"):
        path = VAR / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    database = args.database or f"sqlite:///{VAR / 'fuzz.sqlite3'}"
    if args.database:
        server, name = args.database.rsplit("/", 1)
        for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
            subprocess.run(["psql", f"{server}/postgres", "-qc", sql], check=True,  # noqa: S603, S607 (psql from PATH with the operator's --database; no shell)
                           capture_output=True)
    env = {
        **os.environ,
        **SERVER_ENV,
        "DJANGO_SETTINGS_MODULE": "imagineer.settings",
        "DATABASE_URL": database,
        "IMAGINEER_VAR_DIR": str(VAR),
        "IMAGINEER_MEDIA_ROOT": str(VAR / "media"),
        "IMAGINEER_MODEL_DIR": str(MODELS),
        "IMAGINEER_CAPTION_MODEL": str(MODELS / "tiny-captioner"),
    }
    env.pop("IMAGINEER_REDIS_URL", None)  # the database's queue and cache: nothing shared
    print(f"migrating {database} and registering the demo model ...", flush=True)
    manage("migrate", "--noinput", env=env)
    manage("create_demo_model", env=env)
    os.environ.update(env)
    import django

    django.setup()
    logging.disable(logging.INFO)  # the role changes of the two users, in the security log
    _, lora = models()
    tokens = users()

    from accounts.roles import ADMIN, VIEWER

    results = []
    with WebServer(env, VAR / "logs") as server:
        made = seed(server.url, admin_token=tokens[ADMIN], viewer_token=tokens[VIEWER],
                    lora_file=lora)
        print(f"server at {server.url}; seeded {made}", flush=True)
        for label in (VIEWER, ADMIN):
            print(f"fuzzing with the {label}'s token ...", flush=True)
            result = fuzz(server, tokens[label], label=label, out_dir=VAR / "runs",
                          max_examples=args.examples, phases=args.phases,
                          workers=args.workers, seed=args.seed, lora_file=lora,
                          checks=[*CHECKS, *filter(None, args.checks.split(","))])
            results.append(result)
            print(f"  {result.examples} examples, {result.requests} requests in "
                  f"{result.seconds:.0f} s; failures: {result.failures or 'none'}", flush=True)

    print_table(f"Fuzzing the API: schemathesis, {args.examples} examples per operation and "
                "phase", TABLE_HEADERS, table_rows(results))
    print(f"\nChecks: {', '.join([*CHECKS, *filter(None, args.checks.split(','))])}.")
    failed = [result for result in results if not result.passed]
    for result in failed:
        print("\n" + result.report())
    if failed:
        print(f"\nEach run's whole output: {VAR / 'runs'}/<token>.txt; the server's log: "
              f"{VAR / 'logs' / 'web.log'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
