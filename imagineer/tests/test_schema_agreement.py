"""The schema and the server agree on what is valid (docs/reliability.md, "The schema says
every rule OpenAPI can say"): what a body may be, and the status of a well-formed
request's errors. make fuzz and test_fuzz_api check it against generated requests; these
are the rules themselves."""

import re

import pytest

from albums.models import Album
from core.api import CONFLICT_IN_REQUEST, FORM_BOOLEAN, NOT_FOUND_IN_REQUEST
from core.texts import text_rule

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
                # a boolean is a text DRF reads as one (make fuzz: "0" for keep_unmasked)
                assert field.get("type") != "boolean", (path, name)
            for name, part in form.get("encoding", {}).items():
                assert part["contentType"], (path, name)
                assert "filename=" in part["headers"]["Content-Disposition"]["example"]
        if "application/json" in content:
            for name, field in resolved(schema, content["application/json"]).get(
                    "properties", {}).items():
                assert field.get("format") != "binary", (path, name)  # JSON sends no file
    assert with_forms == UPLOADS
    job = resolved(schema, schema["paths"]["/api/jobs/"]["post"]["requestBody"]["content"][
        "multipart/form-data"])["properties"]["keep_unmasked"]
    assert (job["type"], job["pattern"]) == ("string", FORM_BOOLEAN)
    for text in ("true", "false", "0", "1", "on", "no"):
        assert re.fullmatch(FORM_BOOLEAN, text), text
    assert not re.fullmatch(FORM_BOOLEAN, "2") and not re.fullmatch(FORM_BOOLEAN, "")


def test_bodies_say_what_the_serializers_refuse(schema):
    token = schema["components"]["schemas"]["TokenRequestRequest"]
    assert token["additionalProperties"] is False  # RejectUnknownFields
    assert token["properties"]["password"]["pattern"] == "^[^\\x00]*$"  # no NUL in a text
    # DRF strips the username (trim_whitespace) before it checks it: the stripped text's rule
    assert token["properties"]["username"] == {**text_rule(None, required=True),
                                              "description": "The username or the email address."}
    delete = schema["paths"]["/api/albums/{id}/images/"]["delete"]["requestBody"]
    order = schema["paths"]["/api/albums/{id}/order/"]["patch"]["requestBody"]
    ids = resolved(schema, order["content"]["application/json"])
    assert delete["required"] and ids["required"] == ["image_ids"]  # whole, not partial
    assert ids["properties"]["image_ids"]["items"]["maximum"] == 2**63 - 1
    assert ids["properties"]["image_ids"]["uniqueItems"] is True  # Album.reorder's rule
    for path, method, _ in bodies(schema):
        responses = schema["paths"][path][method]["responses"]
        expected = {"404"} if method == "delete" else {"404", "409"}
        assert expected <= set(responses), (method, path)


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"name": 5}, "name"), ({"name": "A", "is_training_set": 0}, "is_training_set"),
    ({"name": "A", "visibility": 1}, "visibility"),
    # DRF reads "" for an id as null, "1" as 1 (make fuzz: `cover: ""` created an album).
    ({"name": "A", "cover": ""}, "cover"), ({"name": "A", "cover": "1"}, "cover"),
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
def test_an_optional_number_or_choice_may_be_sent_empty_in_a_form_as_drf_reads_it(
        schema, api_as, admin_user, demo_base):
    """DRF reads an empty part of a field that is not required as left out; the form
    schema says so for numbers and choices. A required choice sent empty is refused."""
    form = schema["paths"]["/api/models/{id}/"]["patch"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]
    assert {"type": "string", "maxLength": 0} in form["family"]["anyOf"]
    assert "anyOf" not in form["kind"]  # required: an empty kind is not a kind
    client = api_as(admin_user)
    response = client.patch(f"/api/models/{demo_base.pk}/", {"family": ""},
                            format="multipart")
    assert response.status_code == 200 and response.json()["family"] == demo_base.family
    response = client.patch(f"/api/models/{demo_base.pk}/", {"kind": ""},
                            format="multipart")
    assert response.status_code == 400 and list(response.json()) == ["kind"]


@pytest.mark.django_db
def test_a_text_filter_says_it_holds_no_nul_as_the_server_refuses_one(schema, api_as, viewer):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/images/"]["get"]
                  ["parameters"]}
    assert parameters["search"] == {"type": "string", "pattern": "^[^\\x00]*$"}
    assert api_as(viewer).get("/api/images/?search=dusk").status_code == 200
    response = api_as(viewer).get("/api/images/?search=du%00sk")
    assert response.status_code == 400 and list(response.json()) == ["search"]


@pytest.mark.django_db
def test_every_lists_page_size_may_be_empty_in_the_schema_as_on_the_server(schema, api_as,
                                                                           viewer):
    # An empty page_size is as if left out (core.pagination.Pagination.get_page_size).
    lists = {path: operation for path, item in schema["paths"].items()
             if (operation := item.get("get")) and "cursor" in
             [p["name"] for p in operation.get("parameters", [])]}
    assert len(lists) > 5
    client = api_as(viewer)
    for path, operation in lists.items():
        (size,) = [p for p in operation["parameters"] if p["name"] == "page_size"]
        assert size["allowEmptyValue"] is True and size["in"] == "query", path
        assert size["schema"]["type"] == "integer", path  # a value given is a whole number
        if "{" not in path:
            response = client.get(f"{path}?page_size=")
            assert response.status_code in (200, 403), (path, response.content)
            assert client.get(f"{path}?page_size=0").status_code in (400, 403), path


@pytest.mark.django_db
def test_an_id_in_a_path_is_ascii_digits_as_the_schemas_integer(schema, api_as, editor):
    album = Album.objects.create(name="an album", owner=editor)
    # The id in Arabic-Indic digits (PostgreSQL's sequences go on between tests: any id).
    digit = "".join(chr(0x0660 + int(figure)) for figure in str(album.pk))
    assert int(digit) == album.pk  # Python reads it as the album's id; the URLs do not
    client = api_as(editor)
    assert client.get(f"/api/albums/{album.pk}/").status_code == 200
    assert client.get(f"/api/albums/{digit}/").status_code == 404
    assert client.post(f"/api/albums/{digit}/caption/").status_code == 404
    assert client.get("/api/sets/no-such-set/").status_code == 404  # a slug keeps its rule
    (param,) = schema["paths"]["/api/albums/{id}/"]["get"]["parameters"]
    assert param["schema"] == {"type": "integer"}


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


def as_json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema: `nullable: true` is "or null"."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items()
                 if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted


def allows(schema, component, value):
    """Whether the component's schema allows `value` (a body, or {field: value})."""
    from jsonschema import Draft7Validator

    root = {**as_json_schema(schema["components"]["schemas"][component]),
            "components": as_json_schema(schema["components"])}
    return Draft7Validator(root).is_valid(value)


def allows_text(schema, component, field, text):
    """Whether the component's schema of `field` allows `text`."""
    from jsonschema import Draft7Validator

    prop = schema["components"]["schemas"][component]["properties"][field]
    return Draft7Validator(as_json_schema(prop)).is_valid(text)


# Texts a validator strips and measures: empty, blank, padded, at and past the limit, a NUL.
TEXTS = ["", " ", "\t\n\x1f", "a", " a lighthouse ", "x" * 500, "\u3000" + "x" * 500 + "\n",
         "x" * 501, "a\x00b"]


@pytest.mark.django_db
def test_a_prompt_is_valid_exactly_where_the_schema_says(schema, api_as, admin_user,
                                                        demo_base):
    client = api_as(admin_user)
    for field, base in (("prompt", {}), ("negative_prompt", {"prompt": "a lighthouse"})):
        for text in TEXTS:
            body = {**base, field: text, "steps": 1}
            response = client.post("/api/jobs/", body, format="json")
            assert response.status_code in (201, 400), response.content
            assert (response.status_code == 201) == allows(schema, "JobCreateRequest", body), (
                field, text[:20], response.content)
            if response.status_code == 400:
                assert field in response.json()


@pytest.mark.django_db
def test_a_text_drf_strips_is_valid_exactly_where_the_schema_says(schema, api_as, editor):
    # Any CharField of a body that DRF strips (core.api.stripped_text_rule), e.g. an album's
    # name (200 at most, not blank) and description (may be blank): make fuzz found a name
    # of one no-break space accepted by the schema, refused by the server.
    client = api_as(editor)
    texts = [*TEXTS, "\u00a0", "x" * 200, " " + "x" * 200 + "\u2028", "x" * 201]
    for field, base in (("name", {}), ("description", {"name": "an album"})):
        for text in texts:
            body = {**base, field: text}
            response = client.post("/api/albums/", body, format="json")
            assert response.status_code in (201, 400), response.content
            assert (response.status_code == 201) == allows(schema, "AlbumRequest", body), (
                field, text[:20], response.content)


@pytest.mark.django_db
def test_a_prompt_template_is_valid_exactly_where_the_schema_says(schema, api_as, editor):
    # template_columns' rule, as generation.rules.TEMPLATE_PATTERN says it (make fuzz: an
    # unclosed brace allowed by the schema, refused by the server).
    client = api_as(editor)
    templates = ["the {rank} of {suit}", "{rank:}", "{{literal}}", "{", "a}", "{}",
                 "{rank!r}", "{rank:>9}", "{a.b}", "{a[0]}", " {rank} ", " ", "x" * 501]
    for number, template in enumerate(templates):
        body = {"name": f"set {number}", "prompt_template": template}
        response = client.post("/api/sets/", body, format="json")
        assert response.status_code in (201, 400), response.content
        assert (response.status_code == 201) == allows(schema, "PromptSetRequest", body), (
            template, response.content)


@pytest.mark.django_db
def test_a_models_form_source_may_be_empty_only_beside_a_file(schema, api_as, admin_user):
    def form(path, method):
        content = schema["paths"][path][method]["requestBody"]["content"]
        return {**resolved(schema, content["multipart/form-data"]), "components": {}}

    from jsonschema import Draft7Validator

    new, change = form("/api/models/", "post"), form("/api/models/{id}/", "patch")
    lora = "<the file>"
    assert not Draft7Validator(new).is_valid({"name": "a", "kind": "vae", "source": ""})
    assert Draft7Validator(new).is_valid({"name": "a", "kind": "lora", "source": "",
                                          "file": lora})
    assert not Draft7Validator(change).is_valid({"source": ""})
    assert Draft7Validator(change).is_valid({"name": "b"})
    client = api_as(admin_user)
    response = client.post("/api/models/", {"name": "a", "kind": "vae", "source": ""})
    assert response.status_code == 400 and "source" in response.json()


def test_required_texts_have_no_empty_alternative_and_the_others_one(schema):
    # A text that may be blank is `oneOf` its rule and the empty text: never both.
    for component, field in (("TrainingRunCreateRequest", "trigger_word"),
                             ("PatchedSiteSettingsRequest", "default_negative_prompt"),
                             ("PatchedAlbumRequest", "description")):
        assert allows_text(schema, component, field, ""), (component, field)
        assert allows_text(schema, component, field, " a "), (component, field)
    for component, field in (("TrainingRunCreateRequest", "name"),
                             ("JobCreateRequest", "prompt")):
        prop = schema["components"]["schemas"][component]["properties"][field]
        assert "oneOf" not in prop and prop["minLength"] == 1, (component, field)
        assert not allows_text(schema, component, field, " "), (component, field)
    assert not allows_text(schema, "PatchedSiteSettingsRequest", "default_negative_prompt",
                           "x" * 501)
    assert allows_text(schema, "TrainingRunCreateRequest", "trigger_word", " " + "x" * 100)
    assert not allows_text(schema, "TrainingRunCreateRequest", "trigger_word", "x" * 101)


@pytest.mark.django_db
def test_a_mask_or_outpainting_needs_an_init_image_in_the_schema_as_on_the_server(
        schema, api_as, admin_user, demo_base, media_root):
    from albums.tests.images import make_image

    image = make_image(1, created_by=admin_user)
    client = api_as(admin_user)
    prompt = {"prompt": "a lighthouse", "steps": 1}
    cases = [  # body, the status, the field named
        ({"mask": image.pk}, 400, "mask"), ({"mask": None}, 201, None),
        ({"outpaint": {"left": 8}}, 400, "outpaint"), ({"outpaint": {"left": 0}}, 201, None),
        ({"init_image": image.pk, "hires": {"scale": 2}}, 400, "hires"),
        ({"init_image": image.pk, "outpaint": {"left": 8}}, 201, None),
        # An init_image that names no image answers alone: 404, the outpaint not judged.
        ({"init_image": 2**62, "outpaint": {"left": 8}}, 404, "init_image"),
        # Nor the canvas it would make, which depends on the image (make fuzz found it).
        ({"init_image": 2**62, "width": 1520, "outpaint": {"left": 384, "right": 360}}, 404,
         "init_image"),
    ]
    for extra, status, field in cases:
        body = {**prompt, **extra}
        response = client.post("/api/jobs/", body, format="json")
        assert response.status_code == status, (extra, response.content)
        assert allows(schema, "JobCreateRequest", body) == (status != 400), extra
        if field:
            assert set(response.json()) - {"detail"} == {field}, response.content
