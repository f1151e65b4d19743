"""Errors the API answers outside its views: JSON like every other API error.

Found by fuzzing the API (imagineer/tests/test_fuzz_api.py, `make fuzz`).
"""

import pytest

from core.api import NOT_FOUND_IN_REQUEST
from core.pagination import BAD_CURSOR, CURSOR_PATTERN, NO_SUCH_CURSOR


def test_it_answers_json_404_for_an_api_url_that_matches_nothing(client, settings):
    settings.DEBUG = False  # as in production: DEBUG shows its own page instead
    for path in ("/api/jobs/0.5/cancel/", "/api/albums/0.5/images/", "/api/nothing/"):
        response = client.post(path) if "cancel" in path else client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}
    page = client.get("/nothing-here/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["%00", "a b", "e30=", "x.y", "%C2%A2"])
def test_it_refuses_a_cursor_of_the_wrong_shape_by_name(api_as, viewer, schema, cursor):
    response = api_as(viewer).get(f"/api/albums/?cursor={cursor}")
    assert response.status_code == 400
    assert response.json() == {"cursor": [BAD_CURSOR]}
    pages = [path for path, item in schema["paths"].items() if "/api/" in path
             and "Paginated" in str(item.get("get", {}).get("responses", {}).get("200"))]
    assert "/api/albums/" in pages and "/api/jobs/" in pages
    for path in pages:
        operation = schema["paths"][path]["get"]
        assert {"400", "404"} <= set(operation["responses"]), path
        (parameter,) = [p for p in operation["parameters"] if p["name"] == "cursor"]
        assert parameter["schema"]["pattern"] == f"^{CURSOR_PATTERN}$", path
        assert "page" not in [p["name"] for p in operation["parameters"]], path


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["x", "e30", "eyJ2IjpbXSwiYiI6ZmFsc2V9", "bm90IGpzb24"])
def test_it_answers_404_for_a_cursor_it_did_not_give_by_name(api_as, viewer, cursor):
    """The shape of a cursor, but no place in this list: no such page, as DRF's page
    numbers answer a page that does not exist."""
    response = api_as(viewer).get(f"/api/albums/?cursor={cursor}")
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND_IN_REQUEST, "cursor": [NO_SUCH_CURSOR]}


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", ["0", "-1", "501", "ten", "2.5", "²", "1e3"])
def test_it_refuses_a_page_size_out_of_range_by_name(api_as, viewer, page_size):
    for path in ("/api/jobs/", "/api/images/", "/api/albums/"):
        response = api_as(viewer).get(f"{path}?page_size={page_size}")
        assert response.status_code == 400, (path, page_size)
        assert response.json() == {"page_size": ["A whole number from 1 to 500."]}


@pytest.mark.django_db
def test_it_pages_every_list_by_page_size(api_as, viewer, schema):
    from albums.models import Album

    for number in range(3):
        Album.objects.create(name=f"album {number}", owner=viewer)
    client = api_as(viewer)
    first = client.get("/api/albums/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"] and first["previous"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None and second["previous"]
    assert "count" not in first and "cursor=" in first["next"] and "page_size=2" in first["next"]
    assert len(client.get("/api/albums/?page_size=500").json()["results"]) == 3
    assert len(client.get("/api/albums/?page_size=").json()["results"]) == 3  # as if absent
    lists = [item["get"] for path, item in schema["paths"].items()
             if "Paginated" in str(item.get("get", {}).get("responses", {}).get("200"))]
    assert len(lists) > 5
    for operation in lists:
        (size,) = [p for p in operation["parameters"] if p["name"] == "page_size"]
        assert size["schema"] == {"type": "integer", "minimum": 1, "maximum": 500,
                                  "default": 50}
        assert "400" in operation["responses"], operation["operationId"]


@pytest.mark.django_db
def test_it_answers_json_400_and_500_under_the_api(client, settings, monkeypatch):
    settings.DEBUG = False
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"field{number}": "x" for number in range(11)}
    response = client.post("/api/token/", fields)  # refused by Django before the view
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "number of GET/POST parameters exceeded" in response.json()["detail"]
    page = client.post("/accounts/login/", fields)
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")

    from imagineer import api

    def broken(parts):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "report", broken)
    client.raise_request_exception = False  # answer as the server would
    response = client.get("/api/health/")
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Server error."}
