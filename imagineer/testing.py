"""Helpers for tests: the URL conf as a list of routes, real processes (manage.py
commands, qcluster workers), and quick password hashes for the test users."""

import os
import sys
from pathlib import Path

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def url_routes(skip_include=lambda resolver: False):
    """(name, pattern, route) of every URL pattern of the URL conf, includes followed;
    route is the pattern's full text from the root, e.g. "api/jobs/(?P<pk>[^/.]+)/".
    An include for which skip_include(resolver) is true is left out whole."""
    from django.urls import URLResolver, get_resolver

    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                if not skip_include(pattern):
                    yield from walk(pattern, route)
            else:
                yield pattern.name, pattern, route

    return list(walk(get_resolver(), ""))


def database_url():
    """DATABASE_URL of the database the test run is using (the test database)."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    auth = settings["USER"] or ""
    if settings.get("PASSWORD"):
        auth += f":{settings['PASSWORD']}"
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{settings['NAME']}"


def subprocess_env(**extra):
    """The environment for a child process that must see the test database and media."""
    from django.conf import settings

    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env["IMAGINEER_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["IMAGINEER_MODEL_CACHE"] = str(settings.IMAGINEER_MODEL_CACHE)
    env["IMAGINEER_MODEL_ROOTS"] = ",".join(str(root) for root in settings.IMAGINEER_MODEL_ROOTS)
    env["IMAGINEER_HUB_DOWNLOADS"] = "1" if settings.IMAGINEER_HUB_DOWNLOADS else "0"
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(*args, env=None, **kwargs):
    """Run a manage.py command in a child process."""
    import subprocess

    return subprocess.run(  # noqa: S603 (our manage.py, an argument list: no shell)
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env if env is not None else subprocess_env(),
        capture_output=True,
        text=True,
        **kwargs,
    )


def wait_for(predicate, timeout=60, interval=0.2, message="condition"):
    """Poll until predicate() is truthy; return its value or fail after timeout seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def queries_per_page(client, url, sizes):
    """{page size: the number of queries} of GET `url` at each of `sizes`, each page full
    (asserted): a list whose queries do not grow with its rows gives one number."""
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for size in sizes:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{url}{'&' if '?' in url else '?'}page_size={size}")
        if len(response.json()["results"]) != size:
            raise AssertionError(f"{url} gave no full page of {size}")
        counts[size] = len(queries)
    return counts


def _leftover_file():
    from django.conf import settings

    path = Path(settings.VAR_DIR) / "test-workers.pids"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def kill_leftover_workers():
    """Kill workers that an interrupted test run left behind (they run in their own
    process groups and would otherwise take the next run's tasks)."""
    import signal

    path = _leftover_file()
    if not path.exists():
        return
    for line in path.read_text().split():
        try:
            os.killpg(int(line), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass
    path.unlink()


class WorkerProcess:
    """A real `manage.py qcluster` on the test database, started and stopped by a test."""

    def __init__(self, log_path, **env):
        self.log_path = log_path
        # One torch thread unless the test says otherwise: the demo model's layers are too
        # small for two, and on a shared 2-core machine two threads made a step up to ten
        # times slower (docs/performance.md).
        self.env = {"OMP_NUM_THREADS": 1, **env}
        self.process = None

    def start(self):
        import subprocess

        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(  # noqa: S603 (our manage.py qcluster, fixed arguments)
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
            cwd=BASE_DIR,
            env=subprocess_env(**self.env),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches its children
        )
        with open(_leftover_file(), "a") as pids:
            pids.write(f"{self.process.pid}\n")
        return self

    def kill(self):
        """Kill the whole cluster at once with SIGKILL, as a crash would: no clean-up runs."""
        import signal

        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None
        self.log_file.close()

    def stop(self, grace=3):
        """Ask the cluster to stop (SIGTERM); kill it if it has not within `grace` seconds."""
        import signal
        import subprocess

        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log(self):
        return Path(self.log_path).read_text(errors="replace")


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 that a test starts, for what lies outside the
    system (a remote API, a web site): `handle(request)` answers each request with
    (status, headers, body bytes) and every request is recorded in `requests`.

        with LocalServer(lambda request: (200, {"Content-Type": "text/plain"}, b"hi")) as server:
            fetch(server.url + "/path")
    """

    def __init__(self, handle):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.handle = handle
        self.requests = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = LocalRequest(self.command, self.path,
                                       {k.lower(): v for k, v in self.headers.items()},
                                       self.rfile.read(length) if length else b"")
                with server.lock:
                    server.requests.append(request)
                status, headers, body = server.handle(request)
                try:
                    self.send_response(status)
                    headers = {"Content-Length": str(len(body)), **headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a byte limit, a timeout): as it may

            do_GET = do_POST = do_HEAD = answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class LocalRequest:
    """A request the server took; header names in lower case."""

    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def json(self):
        import json

        return json.loads(self.body)


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with 1,000 rounds instead of a million (seconds per hash on a loaded
    machine, paid for every user a test makes and every sign-in). The hashes are the same
    algorithm with their rounds written in, so a child process with the real settings
    (gunicorn, a manage.py command, a worker) checks them too. The tests only."""

    iterations = 1000
