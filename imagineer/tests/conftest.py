import pytest


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    """The API's OpenAPI schema, as /api/schema/ serves it to an anonymous caller."""
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()
