import json

import pytest

from imagineer.testing import manage, subprocess_env


@pytest.mark.django_db
def test_it_answers_ok_without_auth(client):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_it_answers_503_and_names_the_database_when_it_is_down():
    # A real web process whose database cannot be reached.
    code = (
        "from django.test import Client;import json;"
        "r=Client(HTTP_HOST='localhost').get('/api/health/');print(r.status_code);print(r.content.decode())"
    )
    env = subprocess_env(DATABASE_URL="postgres://postgres@127.0.0.1:1/unreachable")
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    assert status == "503"
    body = json.loads(body)
    assert body["status"] == "unhealthy"
    assert body["database"].startswith("error:")
