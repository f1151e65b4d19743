"""Sentry, for real: child processes with SENTRY_DSN pointing at a local HTTP server that
stands in for Sentry's ingest, which is outside the system."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imagineer.testing import manage, subprocess_env, wait_for

TOKEN = "metrics-token-that-must-not-leave"  # noqa: S105 (a test's metrics token)


@pytest.fixture
def ingest():
    """A local Sentry ingest endpoint; yields (dsn, the events it received)."""
    events = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            events.append((self.path, body.decode()))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_port}/1", events
    server.shutdown()
    server.server_close()


def envelope_events(events):
    """The event items of the envelopes received (an envelope: header line, then items)."""
    found = []
    for _, body in events:
        lines = body.splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


def test_it_reports_unhandled_errors_of_views_and_commands(ingest):
    dsn, received = ingest
    # A request, through the WSGI application as gunicorn serves it, to a view that fails
    # (its database is unreachable); then an error that ends a management command.
    code = (
        "import os;from wsgiref.util import setup_testing_defaults;"
        "from imagineer.wsgi import application;"
        "environ={'PATH_INFO':'/metrics','HTTP_HOST':'localhost',"
        "'HTTP_AUTHORIZATION':'Bearer '+os.environ['IMAGINEER_METRICS_TOKEN']};"
        "setup_testing_defaults(environ);"
        "b''.join(application(environ,lambda status,headers:print(status)));"
        "del environ;raise RuntimeError('the command broke')"
    )
    env = subprocess_env(SENTRY_DSN=dsn, IMAGINEER_METRICS_TOKEN=TOKEN,
                         SENTRY_ENVIRONMENT="testing",
                         DATABASE_URL="postgres://postgres@127.0.0.1:1/unreachable")
    result = manage("shell", "-c", code, env=env, timeout=60)
    assert result.stdout.strip().splitlines()[-1].startswith("500 ")
    assert "the command broke" in result.stderr

    events = wait_for(lambda: len(envelope_events(received)) >= 2 and envelope_events(received),
                      timeout=10, message="two events at the local Sentry")
    assert all(path == "/api/1/envelope/" for path, _ in received)
    by_type = {event["exception"]["values"][-1]["type"]: event for event in events}
    view_error = by_type["OperationalError"]
    assert view_error["request"]["url"] == "http://localhost/metrics"
    assert view_error["environment"] == "testing"
    assert by_type["RuntimeError"]["exception"]["values"][-1]["value"] == "the command broke"
    # No personal data: the Authorization header (and its token) is filtered out.
    assert all(TOKEN not in body for _, body in received)
    assert view_error["request"]["headers"]["Authorization"] == "[Filtered]"


def test_it_is_off_without_a_dsn():
    code = "import sentry_sdk;print(sentry_sdk.get_client().is_active())"
    result = manage("shell", "-c", code, env=subprocess_env(SENTRY_DSN=""), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
