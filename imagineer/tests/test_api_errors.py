"""Errors the API answers outside its views: JSON like every other API error.

Found by fuzzing the API (imagineer/tests/test_fuzz_api.py, `make fuzz`).
"""

import pytest


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
def test_it_documents_the_404_of_a_page_that_does_not_exist(api_as, viewer, schema):
    response = api_as(viewer).get("/api/albums/?page=0")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}
    pages = [path for path, item in schema["paths"].items() if "/api/" in path
             and "Paginated" in str(item.get("get", {}).get("responses", {}).get("200"))]
    assert "/api/albums/" in pages and "/api/jobs/" in pages
    for path in pages:
        assert "404" in schema["paths"][path]["get"]["responses"], path
