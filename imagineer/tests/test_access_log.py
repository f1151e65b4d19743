"""The access log: one JSON line per request, as a real gunicorn writes it, without a
token or a password in it."""

import json

import pytest
import requests
from rest_framework.authtoken.models import Token

from conftest import PASSWORD
from imagineer.fuzzing import WebServer
from imagineer.testing import subprocess_env, wait_for

# Backend-neutral (conftest.py): the access log's format.
pytestmark = pytest.mark.backend_neutral

SECRET_QUERY = "a-secret-in-the-query-string"  # noqa: S105 (made up: the log must not show it)


def access_lines(server):
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "access"]


@pytest.mark.django_db(transaction=True)
def test_it_logs_each_request_without_tokens_or_passwords(viewer, tmp_path):
    token = Token.objects.create(user=viewer).key
    # One proxy in front, which appends the address it saw to X-Forwarded-For: that one is
    # the client's; what the client itself put there (the first) is not to be believed.
    env = subprocess_env(IMAGINEER_PROXY_COUNT="1", IMAGINEER_LOG_LEVEL="INFO")
    with WebServer(env, tmp_path, workers=1) as server:
        proxied = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        jobs = requests.get(
            f"{server.url}/api/jobs/?page_size=1&token={SECRET_QUERY}&api_key={SECRET_QUERY}",
            headers={"Authorization": f"Token {token}", "X-Request-ID": "trace-42", **proxied},
            timeout=30)
        assert jobs.status_code == 200
        signed_in = requests.post(f"{server.url}/api/token/", timeout=30, headers=proxied,
                                  data={"username": viewer.username, "password": PASSWORD})
        assert signed_in.status_code == 200
        assert requests.get(f"{server.url}/api/jobs/", timeout=30).status_code == 401
        # A password-reset link carries its key in the path.
        requests.get(f"{server.url}/accounts/password/reset/key/1-{SECRET_QUERY}/", timeout=30)
        lines = wait_for(lambda: len(access_lines(server)) >= 5 and access_lines(server),
                         timeout=30, message="the access log lines")
        text = server.log()

    by_request = {(line["method"], line["path"]): line for line in lines}
    listed = by_request[("GET", "/api/jobs/")]  # the last one: anonymous
    assert listed["status"] == 401 and listed["user_id"] is None
    assert listed["address"] == "127.0.0.1"  # no X-Forwarded-For: the connection's
    first = next(line for line in lines if line["request_id"] == "trace-42")
    assert first["method"] == "GET" and first["path"] == "/api/jobs/"
    assert first["status"] == 200 and first["user_id"] == viewer.pk
    assert first["address"] == "203.0.113.9"
    assert first["query"] == "page_size=1&token=[redacted]&api_key=[redacted]"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] > 0
    assert first["level"] == "INFO" and first["time"]
    token_line = by_request[("POST", "/api/token/")]
    assert token_line["status"] == 200 and token_line["address"] == "203.0.113.9"
    assert token_line["request_id"] and token_line["request_id"] != "trace-42"
    assert ("GET", "/accounts/password/reset/key/1-[redacted]/") in by_request
    # Nowhere in the log: the token (sent, and answered by /api/token/), the password,
    # the query's secrets, the reset key.
    for secret in (token, PASSWORD, SECRET_QUERY):
        assert secret not in text
