"""Fixtures for the project's tests: the tiny demo model (shared with generation's tests)
and the API's schema."""

import pytest

from generation.tests import conftest as generation_fixtures

demo_model_dir = generation_fixtures.demo_model_dir
demo_base = generation_fixtures.demo_base
demo_loras = generation_fixtures.demo_loras
quick_job = generation_fixtures.quick_job


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    """The API's OpenAPI schema, as /api/schema/ serves it to an anonymous caller."""
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()
