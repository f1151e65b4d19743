"""Sentry, for real: child processes with SENTRY_DSN pointing at a local HTTP server that
stands in for Sentry's ingest, which is outside the system."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imagineer.testing import manage, subprocess_env, wait_for

# Backend-neutral (conftest.py): what reaches Sentry.
pytestmark = pytest.mark.backend_neutral

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


def envelope_items(events, kind):
    """The payloads of the envelope items of `kind` ("event", "transaction") received."""
    found = []
    for _, body in events:
        lines = body.splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == kind:
                found.append(json.loads(payload))
    return found


# A request to /api/health/ through the WSGI application, then an error that ends the
# command (an event that shows the process has sent what it had).
TRACED_REQUEST = (
    "from wsgiref.util import setup_testing_defaults;"
    "from imagineer.wsgi import application;"
    "environ={'PATH_INFO':'/api/health/','QUERY_STRING':'only=database','HTTP_HOST':'localhost'};"
    "setup_testing_defaults(environ);"
    "b''.join(application(environ,lambda status,headers:print(status)));"
    "raise RuntimeError('done')"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rate, traced", [("1", True), ("0", False), ("", False)])
def test_it_sends_traces_at_the_sample_rate(ingest, rate, traced):
    dsn, received = ingest
    result = manage("shell", "-c", TRACED_REQUEST, timeout=60,
                    env=subprocess_env(SENTRY_DSN=dsn, SENTRY_TRACES_SAMPLE_RATE=rate))
    assert result.stdout.strip().splitlines()[-1].startswith("200 "), result.stderr
    wait_for(lambda: envelope_items(received, "event"), timeout=10, message="the error event")
    transactions = envelope_items(received, "transaction")
    if traced:
        assert [item["transaction"] for item in transactions] == ["/api/health/"]
    else:
        assert transactions == []


@pytest.mark.parametrize("rate", ["1.5", "-0.1", "ten percent", "nan"])
def test_it_refuses_a_sample_rate_outside_0_to_1(rate):
    result = manage("check", env=subprocess_env(SENTRY_TRACES_SAMPLE_RATE=rate), timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1 (e.g. 0.1); got {rate!r}."]
