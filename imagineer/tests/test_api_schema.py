"""The OpenAPI schema at /api/schema/: valid, complete, and covering every /api/ URL."""

import re

import pytest
from django.urls import URLResolver, get_resolver, resolve
from openapi_spec_validator import validate

from imagineer.testing import manage

# Backend-neutral (conftest.py): the schema is generated from the code.
pytestmark = pytest.mark.backend_neutral

METHODS = ("get", "post", "put", "patch", "delete")
JSON = "application/json"
# Documentation of the documentation, not part of the API.
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/"}


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_it_serves_a_valid_openapi_3_schema_to_anyone(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Imagineer API"


def test_it_serves_the_schema_and_the_docs_to_anyone(client):
    # Credentials play no part, not even a stale token: the schema is the same for all.
    stale = {"HTTP_AUTHORIZATION": "Token revoked-long-ago"}
    assert client.get("/api/schema/", **stale).status_code == 200
    page = client.get("/api/docs/", **stale)
    assert page.status_code == 200
    assert b'<script src="/api/docs/?script="></script>' in page.content
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b'"/api/schema/"' in script.content


def test_it_generates_the_schema_without_warnings_or_errors(tmp_path):
    result = manage("spectacular", "--validate", "--fail-on-warn",
                    "--file", str(tmp_path / "schema.yaml"))
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr


def test_it_describes_a_2xx_answer_for_every_operation(schema):
    for path, method, operation in operations(schema):
        answers = {code: answer for code, answer in operation["responses"].items()
                   if code.startswith("2")}
        assert answers, f"{method} {path} has no 2xx response"
        for code, answer in answers.items():
            if code == "204":
                assert "content" not in answer, f"{method} {path}"
                continue
            assert answer.get("content"), f"{method} {path} {code} has no body"
            for media_type, body in answer["content"].items():
                assert body.get("schema"), f"{method} {path} {code} {media_type} has no schema"
                if media_type == JSON:
                    assert body.get("examples"), f"{method} {path} {code} has no example"


def view_action(path, method):
    """The view class behind a schema path, and the viewset action the method runs."""
    match = resolve(re.sub(r"\{\w+\}", "1", path))
    actions = getattr(match.func, "actions", {})
    return getattr(match.func, "cls", None), actions.get(method)


def test_it_describes_the_errors_that_apply_to_each_operation(schema):
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        where = f"{method} {path}"
        if {} not in operation.get("security", []):
            assert "401" in codes, f"{where} needs credentials: 401"
        if "{" in path:
            assert "404" in codes, f"{where} names an object: 404"
        if "requestBody" in operation:
            assert "400" in codes, f"{where} takes input: 400"
        view, action = view_action(path, method)
        if getattr(view, "action_permissions", {}).get(action):
            assert "403" in codes, f"{where} needs a permission: 403"
        for code in codes - {"200", "201", "202", "204"}:
            content = operation["responses"][code].get("content", {})
            if JSON in content:
                assert content[JSON].get("examples"), f"{where} {code} has no example"
            if JSON in content and code.startswith("4"):  # the shared error bodies
                body = content[JSON]["schema"]["$ref"].rsplit("/", 1)[-1]
                assert body == ("ValidationError" if code == "400" else "Error"), where


def test_it_gives_an_example_for_every_request_body(schema):
    for path, method, operation in operations(schema):
        content = operation.get("requestBody", {}).get("content", {})
        if JSON in content:
            assert content[JSON].get("examples"), f"{method} {path} has no request example"


def url_routes(patterns, prefix=""):
    """Every URL pattern of the URL conf as (route, callback), includes followed."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_routes(pattern.url_patterns, route)
        else:
            yield route, pattern.callback


def schema_path(route):
    """A URL conf route (path() or the router's regex) written as the schema writes it."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
    path = "/" + path.replace("^", "").replace("$", "")
    return path.replace("{pk}", "{id}")


def api_urls():
    for route, callback in url_routes(get_resolver().url_patterns):
        if re.search(r"[<:]format>", route):  # /api/jobs.json and the like: the same operations
            continue
        path = schema_path(route)
        if path.startswith("/api/") and path not in NOT_IN_SCHEMA:
            view = getattr(callback, "cls", None)
            if view is None:  # a plain Django view
                yield path, ["get"]
                continue
            # A viewset's router maps methods to actions; an APIView has one per method.
            methods = getattr(callback, "actions", None) or [m for m in METHODS if hasattr(view, m)]
            yield path, sorted(set(methods) & set(view.http_method_names) & set(METHODS))


def test_it_documents_every_url_under_api(schema):
    urls = dict(api_urls())
    assert "/api/jobs/{id}/cancel/" in urls and "/api/token/" in urls  # the walk works
    for path, methods in urls.items():
        assert path in schema["paths"], f"{path} is not in the schema"
        for method in methods:
            assert method in schema["paths"][path], f"{method} {path} is not in the schema"


def test_it_documents_the_image_file_downloads(schema):
    download = schema["paths"]["/media/images/{id}/"]["get"]
    assert set(download["responses"]["200"]["content"]) == {
        "image/png", "image/jpeg", "image/webp"}
    assert resolve("/media/images/1/").url_name == "image_file"
    assert resolve("/media/images/1/thumbnail/").url_name == "image_thumbnail"


def test_it_says_that_an_empty_filter_is_allowed_as_the_server_reads_it(schema, api_as,
                                                                         viewer):
    """An empty filter value filters nothing (core/filters.py): the schema allows it too."""
    filters = {path: [p["name"] for p in operation.get("parameters", [])
                      if p.get("allowEmptyValue") and p["name"] != "page_size"]
               for path, method, operation in operations(schema) if method == "get"}
    assert filters["/api/jobs/"] == ["batch", "owner", "status"]
    assert filters["/api/images/"] == ["album", "created_by", "has_caption", "nsfw", "search",
                                       "source"]
    client = api_as(viewer)
    for path in ("/api/jobs/?status=&batch=&owner=",
                 "/api/images/?album=&nsfw=&has_caption=&source=&search=&created_by=",
                 "/api/models/?kind=", "/api/training-runs/?status="):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
    # A wrong value is a 400 naming the filter, whatever it holds (a % is no format).
    for name in ("created_by", "album", "has_caption", "nsfw"):
        response = client.get("/api/images/", {name: "%s 100% %(x)d"})
        assert response.status_code == 400, (name, response.content)
        assert "100% %(x)d" in response.json()[name][0], response.content


@pytest.mark.django_db
def test_its_rules_for_health_parts_and_upload_files_are_the_servers(schema, client):
    only = schema["paths"]["/api/health/"]["get"]["parameters"][0]["schema"]["pattern"]
    for value in ("", "database", "database,disk", ",workers,", "databasedisk", "cpu", "$"):
        refused = client.get("/api/health/", {"only": value}).status_code == 400
        assert refused == (re.search(only, value) is None), value
    for name in ("ImageUploadRequest", "DatasetUploadRequest"):
        assert schema["components"]["schemas"][name]["properties"]["file"]["minItems"] == 1
