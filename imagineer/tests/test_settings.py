"""Production settings: the missing secret key, and Django's deployment checklist.

Headers on every page, cookies and HSTS in production: test_web_security.py."""

import secrets

import pytest

from imagineer.testing import manage, subprocess_env

# Backend-neutral (conftest.py): the production settings and their checks.
pytestmark = pytest.mark.backend_neutral

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


@pytest.mark.parametrize("command", [["check"], ["migrate", "--plan"], ["runserver", "--help"]])
def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(db, command):
    env = subprocess_env(DJANGO_DEBUG="0")
    env.pop("DJANGO_SECRET_KEY", None)
    result = manage(*command, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DJANGO_SECRET_KEY is not set" in lines[0]
    assert "secrets.token_urlsafe" in lines[0]


def test_it_refuses_to_serve_wsgi_without_a_secret_key(db):
    env = subprocess_env(DJANGO_DEBUG="0")
    env.pop("DJANGO_SECRET_KEY", None)
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import imagineer.wsgi"], env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_it_passes_the_deployment_checklist_with_production_settings(db):
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env=subprocess_env(**PRODUCTION))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_allows_only_configured_cors_origins(client, db):
    response = client.get("/api/health/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("value, expected", [("yes", True), ("On", True), ("0", False),
                                             ("off", False), ("", False)])
def test_it_reads_the_usual_true_and_false_spellings(monkeypatch, value, expected):
    from imagineer.settings import env_bool

    monkeypatch.setenv("IMAGINEER_PUBLIC_GALLERY", value)
    assert env_bool("IMAGINEER_PUBLIC_GALLERY") is expected


def test_it_refuses_to_start_on_a_boolean_it_cannot_read(db):
    result = manage("check", env=subprocess_env(IMAGINEER_PUBLIC_GALLERY="ture"))
    assert result.returncode != 0
    assert "IMAGINEER_PUBLIC_GALLERY='ture': use one of 1, true, yes, on" in result.stderr


def test_debug_is_off_when_DJANGO_DEBUG_is_unset(db):
    # The Docker image run on its own, or a service that forgot the variable: production.
    env = subprocess_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                         DJANGO_ALLOWED_HOSTS="example.com")
    env.pop("DJANGO_DEBUG")
    result = manage("shell", "-c", "from django.conf import settings; print(settings.DEBUG)",
                    env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    env.pop("DJANGO_SECRET_KEY")
    refused = manage("check", env=env)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in refused.stderr


def test_make_turns_debug_on_for_development_unless_told_otherwise():
    import os
    import subprocess

    from imagineer.testing import BASE_DIR

    def make_debug(**extra):
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_DEBUG"}
        env.update(extra)
        database = subprocess.run(["make", "-n", "-p", "run"], cwd=BASE_DIR, env=env,  # noqa: S607 (make from PATH, as the README runs it)
                                  capture_output=True, text=True).stdout
        return [line for line in database.splitlines() if line.startswith("DJANGO_DEBUG ")]

    assert make_debug() == ["DJANGO_DEBUG = 1"]
    assert make_debug(DJANGO_DEBUG="0") == ["DJANGO_DEBUG = 0"]


def test_it_refuses_to_start_behind_a_tls_proxy_without_a_proxy_count(db):
    # Every client would share the proxy's address: five bad passwords lock the site out.
    env = subprocess_env(**PRODUCTION, DJANGO_BEHIND_TLS_PROXY="1", IMAGINEER_PROXY_COUNT="0")
    refused = manage("check", env=env)
    assert refused.returncode != 0
    assert "DJANGO_BEHIND_TLS_PROXY=1 needs IMAGINEER_PROXY_COUNT" in refused.stderr
    env["IMAGINEER_PROXY_COUNT"] = "1"
    started = manage("check", env=env)
    assert started.returncode == 0, started.stderr
