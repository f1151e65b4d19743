"""Where a model's weights may come from, and that they stay what registration checked
(issue 13, item 6): local files only inside IMAGINEER_MODEL_ROOTS, hub ids only with
IMAGINEER_HUB_DOWNLOADS, kind, source, file and family fixed once registered, in the admin
as in the API (one rule: ModelVersion.clean / refuse_fixed_changes)."""

import pytest
from django.core.exceptions import ValidationError

from generation.models import ModelVersion, SourceRefused

pytestmark = pytest.mark.django_db


def register(client, **fields):
    return client.post("/api/models/", {"name": "other", "kind": "base", **fields},
                       format="json")


def test_the_admin_keeps_what_registration_checked(client, editor, demo_base, demo_loras):
    client.force_login(editor)
    url = f"/admin/generation/modelversion/{demo_base.pk}/change/"
    form = client.get(url).content.decode()
    for field in ModelVersion.FIXED_FIELDS:
        assert f'name="{field}"' not in form, field  # shown, not editable
    response = client.post(url, {
        "name": "renamed", "kind": "lora", "source": str(demo_loras[0]), "family": "sdxl",
        "trigger_words": "", "version": "", "is_active": "on", "description": ""})
    assert response.status_code == 302
    changed = ModelVersion.objects.get(pk=demo_base.pk)
    assert changed.name == "renamed"
    assert (changed.kind, changed.source, changed.family, changed.sha256) == (
        demo_base.kind, demo_base.source, demo_base.family, demo_base.sha256)


def test_the_model_refuses_a_change_of_what_registration_checked(demo_base, demo_loras):
    # The rule itself, as the admin's form and the API's serializer reach it.
    demo_base.source, demo_base.family = str(demo_loras[0]), "sdxl"
    with pytest.raises(ValidationError) as error:
        demo_base.full_clean()
    assert error.value.message_dict == {
        "source": [ModelVersion.FIXED_MESSAGE], "family": [ModelVersion.FIXED_MESSAGE]}
    demo_base.refresh_from_db()
    demo_base.name = "only the name"
    demo_base.full_clean()


def test_it_registers_local_models_only_inside_the_model_roots(api_as, editor, settings,
                                                               demo_model_dir, tmp_path):
    client = api_as(editor)
    roots = tmp_path / "models"
    roots.mkdir()
    settings.IMAGINEER_MODEL_ROOTS = [roots]
    (roots / "link").symlink_to(demo_model_dir)  # inside by name, outside in fact
    for source in (str(demo_model_dir), str(roots / "link"), str(roots / ".." / ".."),
                   "/etc"):
        response = register(client, source=source)
        assert response.status_code == 403, source  # this server's settings: not a bad request
        [message] = response.json()["source"]
        assert message.startswith(f"{source} is outside the model folders: local models "
                                  f"must be inside IMAGINEER_MODEL_ROOTS ({roots}).")
    # Relative paths: whose current directory? (albums/tests is one here, and hub-shaped.)
    for source in ("albums/tests", "./demo", "../etc"):
        response = register(client, source=source)
        assert response.json() == {"source": [
            f"{source} is neither an absolute path nor a Hugging Face hub id (owner/name)."]}
    assert not ModelVersion.objects.exists()

    settings.IMAGINEER_MODEL_ROOTS = [demo_model_dir.parent]
    response = register(client, source=str(demo_model_dir))
    assert response.status_code == 201, response.content


def test_it_registers_hub_models_only_when_the_operator_allows_downloads(api_as, editor,
                                                                         settings):
    client = api_as(editor)
    settings.IMAGINEER_HUB_DOWNLOADS = False
    response = register(client, source="someone/sd15")
    assert response.status_code == 403
    assert "models from the Hugging Face hub are off" in response.json()["source"][0]
    assert "IMAGINEER_HUB_DOWNLOADS=1" in response.json()["source"][0]
    settings.IMAGINEER_HUB_DOWNLOADS = True
    assert register(client, source="someone/sd15").status_code == 201


def test_the_admin_registers_by_the_same_rule(client, editor, settings):
    client.force_login(editor)
    settings.IMAGINEER_HUB_DOWNLOADS = False
    response = client.post("/admin/generation/modelversion/add/", {
        "name": "pwn", "kind": "base", "source": "/etc", "family": "sd15",
        "trigger_words": "", "version": "", "is_active": "on", "description": ""})
    assert response.status_code == 200
    assert "outside the model folders" in response.content.decode()
    assert not ModelVersion.objects.exists()


def test_a_worker_refuses_a_source_the_settings_no_longer_allow(settings, demo_base):
    # Registered before the rule (or before the operator changed the settings).
    settings.IMAGINEER_MODEL_ROOTS = []
    with pytest.raises(SourceRefused) as error:
        demo_base.engine_source()
    assert str(demo_base.source) not in str(error.value)  # it becomes a job's error
    hub = ModelVersion.objects.create(name="hub", kind="base", source="someone/sd15")
    settings.IMAGINEER_HUB_DOWNLOADS = False
    with pytest.raises(SourceRefused, match="hub: its source is no longer allowed"):
        hub.engine_source()
    settings.IMAGINEER_HUB_DOWNLOADS = True
    assert hub.engine_source() == "someone/sd15"
