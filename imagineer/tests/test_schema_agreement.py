"""The schema and the server agree on what is valid (docs/reliability.md, "The schema says
every rule OpenAPI can say"): what a body may be, and the status of a well-formed
request's errors. make fuzz and test_fuzz_api check it against generated requests; these
are the rules themselves."""

import pytest

from albums.models import Album
from core.api import CONFLICT_IN_REQUEST, NOT_FOUND_IN_REQUEST

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
UPLOADS = {"/api/images/", "/api/albums/{id}/import/", "/api/jobs/",
           "/api/sets/{slug}/items/", "/api/models/", "/api/models/{id}/"}


def bodies(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                yield path, method, operation["requestBody"]["content"]


def resolved(schema, body):
    ref = body["schema"].get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else body["schema"]


def test_forms_are_declared_only_where_a_file_is_sent_and_say_only_text_and_files(schema):
    with_forms = set()
    for path, method, content in bodies(schema):
        assert "application/x-www-form-urlencoded" not in content, (method, path)
        if "multipart/form-data" in content:
            with_forms.add(path)
            form = content["multipart/form-data"]
            for name, field in resolved(schema, form)["properties"].items():
                assert "nullable" not in field and field.get("type") != "object", (path, name)
            for name, part in form.get("encoding", {}).items():
                assert part["contentType"], (path, name)
                assert "filename=" in part["headers"]["Content-Disposition"]["example"]
        if "application/json" in content:
            for name, field in resolved(schema, content["application/json"]).get(
                    "properties", {}).items():
                assert field.get("format") != "binary", (path, name)  # JSON sends no file
    assert with_forms == UPLOADS


def test_bodies_say_what_the_serializers_refuse(schema):
    token = schema["components"]["schemas"]["TokenRequestRequest"]
    assert token["additionalProperties"] is False  # RejectUnknownFields
    assert token["properties"]["username"]["pattern"] == "^[^\\x00]*$"  # no NUL in a text
    delete = schema["paths"]["/api/albums/{id}/images/"]["delete"]["requestBody"]
    order = schema["paths"]["/api/albums/{id}/order/"]["patch"]["requestBody"]
    ids = resolved(schema, order["content"]["application/json"])
    assert delete["required"] and ids["required"] == ["image_ids"]  # whole, not partial
    assert ids["properties"]["image_ids"]["items"]["maximum"] == 2**63 - 1
    for path, method, _ in bodies(schema):
        responses = schema["paths"][path][method]["responses"]
        expected = {"404"} if method == "delete" else {"404", "409"}
        assert expected <= set(responses), (method, path)


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"name": 5}, "name"), ({"name": "A", "is_training_set": 0}, "is_training_set"),
    ({"name": "A", "visibility": 1}, "visibility"),
])
def test_a_json_value_of_another_type_is_refused_naming_the_field(api_as, viewer, body,
                                                                  field):
    response = api_as(viewer).post("/api/albums/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Album.objects.exists()


@pytest.mark.django_db
def test_a_form_is_still_read_as_forms_mean_it(api_as, viewer):
    response = api_as(viewer).post("/api/albums/", {"name": "A", "is_training_set": "0"})
    assert response.status_code == 201, response.content
    assert response.json()["is_training_set"] is False


@pytest.mark.django_db
def test_a_missing_row_and_a_conflict_together_answer_404(api_as, editor, demo_base):
    from generation.models import PromptSet

    PromptSet.objects.create(name="Taken", slug="taken", prompt_template="{subject}",
                             created_by=editor)
    client = api_as(editor)
    response = client.post("/api/sets/", {"name": "New", "slug": "taken",
                                          "prompt_template": "{subject}"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["detail"] == CONFLICT_IN_REQUEST and "slug" in response.json()
    response = client.post("/api/sets/", {"name": "New", "slug": "taken",
                                          "prompt_template": "{subject}",
                                          "loras": [{"id": 999999, "weight": 1}]},
                           format="json")
    assert response.status_code == 404, response.content
    assert response.json()["detail"] == NOT_FOUND_IN_REQUEST
    assert {"slug", "loras"} <= set(response.json())


@pytest.mark.django_db
def test_id_filters_say_the_range_the_server_takes(schema, api_as, viewer):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/images/"]["get"]
                  ["parameters"]}
    assert parameters["album"] == {"type": "integer", "minimum": -(2**63),
                                   "maximum": 2**63 - 1}
    # In the range: an album id, which names no album here (404); past it: not an id (400).
    assert api_as(viewer).get(f"/api/images/?album={2**63 - 1}").status_code == 404
    response = api_as(viewer).get(f"/api/images/?album={2**63}")
    assert response.status_code == 400 and "album" in response.json()


@pytest.mark.django_db
def test_a_models_source_may_not_be_empty_in_json_as_the_server_says(schema, api_as,
                                                                      admin_user):
    # JSON cannot carry the file a form may send beside an empty source.
    for path, method in (("/api/models/", "post"), ("/api/models/{id}/", "patch")):
        content = schema["paths"][path][method]["requestBody"]["content"]
        source = resolved(schema, content["application/json"])["properties"]["source"]
        assert "oneOf" not in source and source["pattern"].startswith("^(/")
    form = schema["paths"]["/api/models/"]["post"]["requestBody"]["content"][
        "multipart/form-data"]
    assert {"maxLength": 0, "type": "string"} in resolved(schema, form)["properties"][
        "source"]["oneOf"]
    response = api_as(admin_user).post("/api/models/", {"name": "x", "kind": "base",
                                                        "source": ""}, format="json")
    assert response.status_code == 400 and "source" in response.json()
