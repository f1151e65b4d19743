"""Crash and restart soak: tiny-model jobs submitted through the web API while the worker
is killed with SIGKILL every few seconds and started again, and PostgreSQL is restarted
once. At the end every job must be succeeded, or failed with a reason; none running or
queued, none with duplicate images, and `manage.py check_media` clean.

    .venv/bin/python bench/soak.py [--jobs 200] [--minutes 10] [--kill-every 4 10]

It runs against its own PostgreSQL database (dropped and created again; --database), its
own media folder under var/soak/, a gunicorn web server and one `manage.py qcluster`, all
real processes. PostgreSQL is restarted with --pg-restart (by default `pg_ctlcluster
<version> <cluster> restart` for the cluster serving port 5432). Exits non-zero when a job
was lost, stuck or duplicated, when the orphan check failed, or when the deadline passed.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from benchlib import ROOT, demo_model, print_table
from benchlib import VAR as BENCH_VAR

VAR = ROOT / "var" / "soak"


def options():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10,
                        help="the whole soak, set-up included, ends by then")
    parser.add_argument("--kill-every", type=float, nargs=2, default=[2, 6],
                        metavar=("MIN", "MAX"),
                        help="seconds between a worker finishing its first job and its SIGKILL "
                             "(random): a kill while it loads the model would test nothing")
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/imagineer_soak")
    parser.add_argument("--pg-restart", default=None,
                        help="shell command that restarts PostgreSQL (default: pg_ctlcluster)")
    return parser.parse_args()


def pg_restart_command():
    """`pg_ctlcluster <version> <name> restart` for the cluster on port 5432, if there is one."""
    try:
        listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,  # noqa: S603, S607 (pg_lsclusters from PATH, fixed arguments)
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in listing.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return f"pg_ctlcluster {version} {name} restart"
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """The web server's API, as a script would use it: token auth over HTTP."""

    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, timeout=10):
        request = urllib.request.Request(  # noqa: S310 (the soak's own http://127.0.0.1 server)
            self.base + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the request built above: http only)
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300]
        except (urllib.error.URLError, OSError) as error:
            return None, str(error)


class Worker:
    """One `manage.py qcluster` in its own process group, killed the way a crash would."""

    def __init__(self, env, log):
        self.env, self.log, self.process = env, log, None
        self.started = self.working = None  # wall-clock start; monotonic first job done

    def start(self):
        self.process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        from django.utils import timezone

        self.started = timezone.now()
        self.working = None

    def kill(self):
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def stop(self):
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            self.kill()


def main():
    args = options()
    deadline = time.monotonic() + args.minutes * 60
    restart = args.pg_restart or pg_restart_command()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    database = args.database.rsplit("/", 1)[1]
    server = args.database.rsplit("/", 1)[0]
    subprocess.run(["psql", server + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {database}"],  # noqa: S603, S607 (psql from PATH with the operator's --database; no shell)
                   check=True, capture_output=True)
    subprocess.run(["psql", server + "/postgres", "-qc", f"CREATE DATABASE {database}"],  # noqa: S603, S607 (as above)
                   check=True, capture_output=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "DJANGO_SETTINGS_MODULE": "imagineer.settings",
        "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG") or "1",  # a development run
        "IMAGINEER_MODEL_ROOTS": str(BENCH_VAR),  # the demo model is built there
        "IMAGINEER_VAR_DIR": str(VAR),
        "IMAGINEER_MEDIA_ROOT": str(VAR / "media"),
        "IMAGINEER_MAX_QUEUE": str(args.jobs + 50),
        "IMAGINEER_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections, connection
    from django.db.models import Count
    from rest_framework.authtoken.models import Token

    from accounts.roles import ADMIN, set_role
    from albums.models import Image
    from generation.models import Job, ModelVersion, Status

    call_command("migrate", verbosity=0)
    model = ModelVersion.from_source(name="demo", kind="base",
                                     source=str(demo_model())).register()
    model.make_default()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("soak", "soak@example.com", "x" * 16)
    set_role(user, ADMIN)  # exempt from the per-user rate limits, not from the queue cap
    token = Token.objects.create(user=user).key
    connection.close()

    port = free_port()
    web_log = open(VAR / "web.log", "wb")  # noqa: SIM115 (open for the whole soak)
    worker_log = open(VAR / "worker.log", "wb")  # noqa: SIM115
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "imagineer.wsgi", "-b",  # noqa: S603 (gunicorn from this interpreter, fixed arguments)
                            f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"], cwd=ROOT, env=env,
                           stdout=web_log, stderr=subprocess.STDOUT, start_new_session=True)
    api = Api(f"http://127.0.0.1:{port}", token)
    worker = Worker(env, worker_log)
    figures = {"kills": 0, "pg_restarts": 0, "web_reconnect_s": None, "worker_reconnect_s": None,
               "submit_errors": 0}
    params = {"width": 64, "height": 64, "steps": 4, "guidance_scale": 5.0}
    submitted = []

    def submit(count):
        for _ in range(count):
            number = len(submitted)
            status, body = api.call("POST", "/api/jobs/",
                                    {"prompt": f"soak {number}", "seed": number, **params})
            if status == 201:
                submitted.append(body["id"])
            else:
                figures["submit_errors"] += 1
                print(f"submit {number}: {status} {body}", flush=True)

    def finished_a_job(since):
        close_old_connections()
        try:
            return Job.objects.filter(finished_at__gte=since).exists()
        except Exception:  # the database is restarting
            connection.close()
            return False

    def counts():
        close_old_connections()
        try:
            rows = Job.objects.filter(pk__in=submitted).values("status").annotate(n=Count("pk"))
            return {row["status"]: row["n"] for row in rows}
        except Exception:  # the database is restarting
            connection.close()
            return None

    try:
        while api.call("GET", "/api/health/")[0] is None:
            time.sleep(0.5)
        # Most jobs up front; the rest after PostgreSQL's restart, through the same web
        # processes, which shows they reconnected.
        first = args.jobs * 3 // 4
        submit(first)
        print(f"submitted {len(submitted)} jobs; soaking", flush=True)
        kill_after = random.uniform(*args.kill_every)  # noqa: S311 (when to kill the worker: no secret)
        # Kill while jobs remain, but stop 90 s before the deadline to let the rest finish.
        kill_until = deadline - 90
        restarted = False
        while time.monotonic() < deadline:
            done = counts()
            if done is not None:
                active = done.get(Status.QUEUED, 0) + done.get(Status.RUNNING, 0)
                finished = len(submitted) - active
                if finished == args.jobs:
                    break
                if not restarted and restart and finished >= first // 3:
                    print(f"{finished} jobs finished: restarting PostgreSQL", flush=True)
                    subprocess.run(restart, shell=True, check=True)  # noqa: S602 (--pg-restart is the operator's own shell command, by design)
                    figures["pg_restarts"] += 1
                    restarted = True
                    began = time.monotonic()
                    while api.call("GET", "/api/jobs/?page_size=1")[0] != 200:
                        time.sleep(0.2)
                    figures["web_reconnect_s"] = round(time.monotonic() - began, 1)
                    submit(args.jobs - first)
                    before = finished
                    while (counts() or {}).get(Status.SUCCEEDED, 0) <= before and (
                            time.monotonic() < deadline):
                        time.sleep(0.2)
                    figures["worker_reconnect_s"] = round(time.monotonic() - began, 1)
            if worker.process is None or worker.process.poll() is not None:
                worker.start()
            elif worker.working is None:
                if finished_a_job(worker.started):
                    worker.working = time.monotonic()
            elif time.monotonic() - worker.working > kill_after and time.monotonic() < kill_until:
                worker.kill()
                figures["kills"] += 1
                kill_after = random.uniform(*args.kill_every)  # noqa: S311 (when to kill the worker: no secret)
                continue
            time.sleep(0.2)
        figures["seconds"] = round(args.minutes * 60 - (deadline - time.monotonic()))
        worker.stop()
    finally:
        worker.kill()
        os.killpg(web.pid, signal.SIGTERM)
        web.wait()

    close_old_connections()
    jobs = Job.objects.filter(pk__in=submitted)
    by_status = counts() or {}
    failed_without_reason = jobs.filter(status=Status.FAILED, error="").count()
    duplicated = jobs.annotate(n=Count("images")).filter(n__gt=1).count()
    unlinked_images = Image.objects.filter(jobs=None).count()
    attempts = dict(jobs.values_list("attempts").annotate(n=Count("pk")).order_by("attempts"))
    orphans = subprocess.run([sys.executable, "manage.py", "check_media"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    lost = args.jobs - len(submitted)  # refused at submit
    unfinished = by_status.get(Status.QUEUED, 0)  # still waiting when the time was up
    stuck = by_status.get(Status.RUNNING, 0)
    reasons = jobs.filter(status=Status.FAILED).values_list("error").annotate(n=Count("pk"))
    rows = [
        ["jobs submitted", len(submitted)],
        ["succeeded", by_status.get(Status.SUCCEEDED, 0)],
        ["failed, with a reason", by_status.get(Status.FAILED, 0) - failed_without_reason],
        ["failed without a reason", failed_without_reason],
        ["refused at submit", lost],
        ["still queued when the time was up", unfinished],
        ["stuck running", stuck],
        ["jobs with duplicate images", duplicated],
        ["images of no job", unlinked_images],
        ["worker kills (SIGKILL) survived", figures["kills"]],
        ["PostgreSQL restarts", figures["pg_restarts"]],
        ["web answering again after the restart (s)", figures["web_reconnect_s"]],
        ["worker finishing a job again after the restart (s)", figures["worker_reconnect_s"]],
        ["attempts per job (attempts: jobs)", attempts],
        ["check_media", "clean" if orphans.returncode == 0 else "FOUND ORPHANS"],
        ["soak seconds", figures.get("seconds")],
    ]
    print_table(f"Crash and restart soak: {args.jobs} jobs, SIGKILL every "
                f"{args.kill_every[0]:g}-{args.kill_every[1]:g} s", ["figure", "value"], rows)
    for error, count in reasons:
        print(f"failed ({count}): {error}")
    if orphans.returncode != 0:
        print(orphans.stdout, orphans.stderr)
    healthy = (not lost and not unfinished and not stuck and not duplicated
               and not failed_without_reason and orphans.returncode == 0
               and figures["submit_errors"] == 0
               and (figures["pg_restarts"] or not restart))
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
