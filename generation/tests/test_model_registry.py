import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from generation.models import Job, ModelVersion
from imagineer.testing import manage

pytestmark = pytest.mark.django_db


def upload(path_or_bytes, name="style.safetensors"):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_it_registers_an_uploaded_lora_with_its_hash(api_as, editor, demo_base, demo_loras,
                                                    media_root):
    response = api_as(editor).post(
        "/api/models/", {"name": "ink", "kind": "lora", "family": "sd15",
                         "file": upload(demo_loras[0])}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    import hashlib

    assert body["sha256"] == hashlib.sha256(open(demo_loras[0], "rb").read()).hexdigest()
    model = ModelVersion.objects.get(pk=body["id"])
    assert model.file.name == f"models/{model.sha256}.safetensors"
    assert (media_root / model.file.name).is_file()
    listed = api_as(editor).get("/api/models/?kind=lora").json()["results"]
    assert [m["id"] for m in listed] == [model.pk]
    # Retired and back: a change leaves out the source, which is the uploaded file here.
    response = api_as(editor).patch(f"/api/models/{model.pk}/", {"is_active": False},
                                    format="json")
    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False


@pytest.mark.parametrize("data, words", [
    (b"this is a text file", "safetensors"),
    (b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":", "safetensors"),
])
def test_it_refuses_a_file_that_is_not_a_lora_and_keeps_nothing(api_as, editor, demo_base,
                                                                data, words, media_root,
                                                                settings):
    response = api_as(editor).post(
        "/api/models/", {"name": "bad", "kind": "lora", "family": "sd15",
                         "file": upload(data)}, format="multipart")
    assert response.status_code == 400
    message = " ".join(response.json()["file"])
    assert words in message.lower()
    assert message.startswith("style.safetensors "), "it names the file the user sent"
    assert ModelVersion.objects.loras().count() == 0
    assert not (media_root / "models").exists() or not any((media_root / "models").iterdir())
    assert not list(settings.IMAGINEER_MODEL_CACHE.glob("tmp*")), "the checked copy is gone"


def test_it_refuses_viewers_uploading_models(api_as, viewer, demo_loras, demo_base):
    response = api_as(viewer).post("/api/models/", {"name": "x", "kind": "lora",
                                                    "file": upload(demo_loras[0])},
                                   format="multipart")
    assert response.status_code == 403


def test_it_keeps_exactly_one_default_base(demo_base, demo_model_dir):
    other = ModelVersion.from_source(name="other", kind="base", source=str(demo_model_dir))
    other.register()
    assert not other.is_default  # the first base stays the default
    other.make_default()
    demo_base.refresh_from_db()
    assert not demo_base.is_default
    assert ModelVersion.objects.default_base() == other
    with pytest.raises(IntegrityError):
        ModelVersion.objects.filter(pk=demo_base.pk).update(is_default=True)


def test_it_registers_models_from_the_command_line(transactional_db, demo_model_dir,
                                                   demo_loras):
    result = manage("register_model", "SD demo", "--source", str(demo_model_dir), "--default")
    assert result.returncode == 0, result.stderr
    result = manage("register_model", "style", "--kind", "lora", "--source",
                    str(demo_loras[1]))
    assert result.returncode == 0, result.stderr
    assert ModelVersion.objects.default_base().name == "SD demo"
    assert ModelVersion.objects.loras().get().sha256
    missing = str(demo_loras[1].parent / "no-such-file.safetensors")
    bad = manage("register_model", "nope", "--kind", "lora", "--source", missing)
    assert bad.returncode != 0 and "no LoRA file" in bad.stderr
    elsewhere = manage("register_model", "nope", "--kind", "lora", "--source", "/etc/passwd")
    assert elsewhere.returncode != 0 and "outside the model folders" in elsewhere.stderr


def test_it_builds_and_registers_the_demo_model_once(transactional_db, tmp_path):
    from imagineer.testing import subprocess_env

    env = subprocess_env(IMAGINEER_MODEL_DIR=tmp_path / "models")
    first = manage("create_demo_model", env=env)
    assert first.returncode == 0, first.stderr
    # The committed, trained weights, installed whole (a CLIP tokenizer of the world's words).
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                 "text_encoder/model.safetensors", "tokenizer/tokenizer.json"):
        assert (tmp_path / "models" / "demo" / part).is_file(), part
    second = manage("create_demo_model", env=env)
    assert second.returncode == 0
    assert ModelVersion.objects.count() == 1
    assert ModelVersion.objects.default_base().name == "demo"


def test_it_changes_a_models_description_without_its_source(api_as, editor):
    model = ModelVersion.objects.create(name="sd15", kind="base", source="example/sd15")
    response = api_as(editor).patch(f"/api/models/{model.pk}/",
                                    {"description": "the usual one"}, format="json")
    assert response.status_code == 200, response.content
    model.refresh_from_db()
    assert (model.description, model.source) == ("the usual one", "example/sd15")


def test_it_keeps_what_registration_checked_on_a_change(api_as, editor):
    model = ModelVersion.objects.create(name="sd15", kind="base", source="example/sd15")
    client = api_as(editor)
    for method in (client.patch, client.put):
        response = method(f"/api/models/{model.pk}/", {
            "name": "sd15", "kind": "lora", "source": "example/other"}, format="json")
        assert response.status_code == 409, response.content  # fixed: not a bad request
        assert set(response.json()) == {"detail", "kind", "source"}
        assert "register a new model version" in response.json()["source"][0]
    model.refresh_from_db()
    assert (model.kind, model.source) == ("base", "example/sd15")
    # The same values again are no change: a PUT may repeat them.
    response = client.put(f"/api/models/{model.pk}/", {
        "name": "SD 1.5", "kind": "base", "source": "example/sd15"}, format="json")
    assert response.status_code == 200, response.content


def test_it_refuses_to_delete_a_model_in_use_naming_what_uses_it(api_as, admin_user, viewer):
    used = ModelVersion.objects.create(name="sd15", kind="base", source="example/sd15")
    for seed in (1, 2):
        Job.objects.create(owner=viewer, prompt="a castle", model=used, width=64, height=64,
                           steps=4, guidance_scale=7.0, seed=seed, scheduler="pndm")
    response = api_as(admin_user).delete(f"/api/models/{used.pk}/")
    assert response.status_code == 409
    assert response.json() == {"detail": "Cannot delete it: it is still used by 2 jobs."}
    assert ModelVersion.objects.filter(pk=used.pk).exists()
    unused = ModelVersion.objects.create(name="other", kind="base", source="example/other")
    assert api_as(admin_user).delete(f"/api/models/{unused.pk}/").status_code == 204


# Found by fuzzing the API (imagineer/tests/test_fuzz_api.py, `make fuzz`).


def test_it_registers_an_uploaded_lora_active_though_the_form_leaves_it_out(
        api_as, editor, demo_base, demo_loras):
    response = api_as(editor).post("/api/models/", {"name": "ink", "kind": "lora",
                                                    "file": upload(demo_loras[0])},
                                   format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["is_active"] is True
    assert ModelVersion.objects.get(pk=response.json()["id"]).is_active


def test_a_source_beside_an_uploaded_file_is_held_to_the_schemas_shape(
        api_as, editor, demo_base, demo_loras):
    """An upload may note where its file came from (a path or a hub id: SOURCE_RULE), but a
    source of no such shape is refused, naming `source`, and nothing is registered (make
    fuzz: a control character beside a file was stored)."""
    before = ModelVersion.objects.count()
    response = api_as(editor).post("/api/models/", {
        "name": "ink", "kind": "lora", "source": "\x01", "file": upload(demo_loras[0])},
        format="multipart")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["source"]
    assert ModelVersion.objects.count() == before

    response = api_as(editor).post("/api/models/", {
        "name": "ink", "kind": "lora", "source": "someone/ink-lora",
        "file": upload(demo_loras[0])}, format="multipart")
    assert response.status_code == 201, response.content


def test_it_answers_404_for_an_id_that_is_not_a_number(api_as, editor, demo_base):
    response = api_as(editor).post("/api/models/null,null/make-default/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("kind, source, status", [
    ("lora", "0" * 300, 400), ("base", "/" + "0" * 300, 403)])  # 403: outside the model roots
def test_it_refuses_a_source_too_long_to_look_up(api_as, editor, demo_base, kind, source,
                                                 status):
    response = api_as(editor).post("/api/models/", {"name": "long", "kind": kind,
                                                    "source": source}, format="json")
    assert response.status_code == status
    assert [name for name in response.json() if name != "detail"] == ["source"]


def test_an_upload_is_checked_against_the_quota_again_under_the_uploaders_lock(
        editor, demo_base, demo_loras, media_root, settings):
    # Two uploads at once both pass the early check (before the file is read); the check
    # in register(), with the uploader's row locked, refuses the one that would overshoot.
    from albums.models import Image
    from core.errors import LimitExceeded

    size = demo_loras[0].stat().st_size
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = size + 100
    model = ModelVersion.from_upload(upload(demo_loras[0]), name="ink", by=editor,
                                     created_by=editor)
    Image.objects.create(created_by=editor, sha256="f" * 64, size_bytes=200,
                         width=1, height=1, file="images/elsewhere.png")

    with pytest.raises(LimitExceeded, match=f"this needs {size} more"):
        model.register()

    assert not ModelVersion.objects.filter(name="ink").exists()
    assert not (media_root / "models").exists() or not any((media_root / "models").iterdir())
