"""Who may use which model: a model's `usable_by` (everyone, editors and admins, admins
only), enforced by the API, the pages, batches, training runs and the admin, and the lists
showing only what the caller may use."""

import pytest
from django.test import Client

from albums.models import Album
from albums.tests.images import make_image
from generation.models import Job, ModelVersion, PromptSet

pytestmark = pytest.mark.django_db

JOB = {"prompt": "a castle", "width": 64, "height": 64, "steps": 4}


@pytest.fixture
def models(settings):
    """The default base (everyone), a base for editors and admins, a LoRA for admins."""
    settings.IMAGINEER_HUB_DOWNLOADS = True
    default = ModelVersion.objects.create(name="demo", kind="base", source="example/demo",
                                          is_default=True)
    editors = ModelVersion.objects.create(name="studio", kind="base", source="example/studio",
                                          usable_by="editor")
    admins = ModelVersion.objects.create(name="secret", kind="base", source="example/secret",
                                         usable_by="admin")
    lora = ModelVersion.objects.create(name="house-style", kind="lora", source="x.safetensors",
                                       usable_by="admin")
    open_lora = ModelVersion.objects.create(name="ink", kind="lora", source="y.safetensors")
    return {"default": default, "editors": editors, "admins": admins, "lora": lora,
            "open_lora": open_lora}


def refusal(field, pk, kind):
    return f"{field} must be an active {kind} your role may use (its usable_by); {pk} is not."


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_it_lists_only_the_models_each_role_may_use(api_as, viewer, editor, admin_user,
                                                    models):
    def listed(user):
        return {m["name"] for m in api_as(user).get("/api/models/").json()["results"]}

    assert listed(viewer) == {"demo", "ink"}
    assert listed(editor) == {"demo", "ink", "studio"}
    assert listed(admin_user) == {"demo", "ink", "studio", "secret", "house-style"}
    assert api_as(viewer).get(f"/api/models/{models['editors'].pk}/").status_code == 404
    body = api_as(admin_user).get(f"/api/models/{models['lora'].pk}/").json()
    assert body["usable_by"] == "admin"


def test_it_refuses_a_job_with_a_model_the_role_may_not_use(api_as, viewer, editor, models):
    pk = models["editors"].pk
    response = api_as(viewer).post("/api/jobs/", {**JOB, "model": pk}, format="json")
    assert response.status_code == 404  # refused as an id that names no model
    assert response.json()["model"] == [refusal("model", pk, "base model")]
    # The same words as for an id that names no model: nothing said of one not visible.
    missing = api_as(viewer).post("/api/jobs/", {**JOB, "model": 99999}, format="json")
    assert missing.json()["model"] == [refusal("model", 99999, "base model")]
    assert not Job.objects.filter(owner=viewer).exists()

    response = api_as(editor).post("/api/jobs/", {**JOB, "model": pk}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.get(pk=response.json()["id"]).model == models["editors"]


def test_it_refuses_a_lora_the_role_may_not_use(api_as, editor, admin_user, models):
    lora = models["lora"]
    response = api_as(editor).post("/api/jobs/", {**JOB, "loras": [{"id": lora.pk}]},
                                   format="json")
    assert response.status_code == 404
    assert response.json()["loras"] == {"0": {"id": [refusal("loras", lora.pk, "LoRA")]}}
    response = api_as(admin_user).post("/api/jobs/", {**JOB, "loras": [{"id": lora.pk}]},
                                       format="json")
    assert response.status_code == 201, response.content


def test_a_job_run_again_is_checked_against_the_model_as_it_is_now(api_as, editor, models):
    job = api_as(editor).post("/api/jobs/", {**JOB, "model": models["editors"].pk},
                              format="json").json()
    ModelVersion.objects.filter(pk=models["editors"].pk).update(usable_by="admin")
    response = api_as(editor).post(f"/api/jobs/{job['id']}/remix/")
    assert response.status_code == 409  # the job names it; it may no longer be used
    assert response.json()["model"] == [refusal("model", models["editors"].pk, "base model")]


def test_the_generate_page_offers_and_takes_only_usable_models(viewer, models):
    client = signed_in(viewer)
    page = client.get("/generate/").content.decode()
    assert "demo" in page and "ink" in page
    assert "studio" not in page and "secret" not in page and "house-style" not in page

    pk = models["editors"].pk
    response = client.post("/generate/", {"prompt": "a castle", "size": "64x64", "steps": "4",
                                          "scheduler": "pndm", "model": pk})
    assert response.status_code == 200
    assert refusal("model", pk, "base model") in response.content.decode()
    assert not Job.objects.exists()


def test_a_batch_refuses_a_set_lora_the_role_may_not_use(api_as, editor, admin_user, models):
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="the sign of {sign}",
                                          created_by=admin_user)
    prompt_set.import_csv("sign\nleo\nvirgo\n")
    prompt_set.set_loras([(models["lora"], 0.8)])  # an admin's choice of LoRA
    response = api_as(editor).post("/api/batches/", {"set": "signs"}, format="json")
    assert response.status_code == 400
    assert response.json()["loras"] == [refusal("loras", models["lora"].pk, "LoRA")]
    assert not Job.objects.exists()
    # The set page says the same.
    response = signed_in(editor).post("/sets/signs/", {"theme": ""})
    assert refusal("loras", models["lora"].pk, "LoRA") in response.content.decode()
    # An editor cannot choose it for a set either (API and page).
    response = api_as(editor).patch("/api/sets/signs/",
                                     {"loras": [{"id": models["lora"].pk}]}, format="json")
    assert response.status_code == 404
    assert response.json()["loras"] == {"0": {"id": [refusal("loras", models["lora"].pk, "LoRA")]}}
    page = signed_in(editor).post("/sets/signs/loras/", {"lora_1": models["lora"].pk,
                                                         "weight_1": "1"})
    assert page.status_code == 400
    assert refusal("loras", models["lora"].pk, "LoRA") in page.content.decode()
    # The admin may run it.
    assert api_as(admin_user).post("/api/batches/", {"set": "signs"},
                                   format="json").status_code == 201


def test_a_training_run_refuses_a_base_the_role_may_not_use(api_as, editor, models):
    album = Album.objects.create(name="Holiday", owner=editor)
    album.add_images([make_image(1, created_by=editor)], by=editor)
    pk = models["admins"].pk
    response = api_as(editor).post("/api/training-runs/",
                                   {"album": album.pk, "name": "x", "base_model": pk},
                                   format="json")
    assert response.status_code == 400
    assert response.json()["base_model"] == [refusal("base_model", pk, "base model")]
    page = signed_in(editor).get(f"/albums/{album.slug}/train/").content.decode()
    assert "studio" in page and "secret" not in page


def test_who_may_set_usable_by_to_what(api_as, editor, admin_user, models):
    studio = f"/api/models/{models['editors'].pk}/"
    response = api_as(editor).patch(studio, {"usable_by": "admin"}, format="json")
    assert response.status_code == 400
    assert response.json()["usable_by"] == [
        "usable_by must be one of viewer, editor (at most your own role); got 'admin'."]
    assert api_as(editor).patch(studio, {"usable_by": "viewer"},
                                format="json").status_code == 200
    assert api_as(admin_user).patch(studio, {"usable_by": "admin"},
                                    format="json").status_code == 200
    # The default base model stays usable by everyone.
    default = f"/api/models/{models['default'].pk}/"
    response = api_as(admin_user).patch(default, {"usable_by": "editor"}, format="json")
    assert response.status_code == 409  # the model's state (the default), as make-default
    assert "default base model is usable by everyone" in response.json()["usable_by"][0]
    response = api_as(admin_user).post(f"/api/models/{models['admins'].pk}/make-default/")
    assert response.status_code == 409
    assert "usable_by" in response.json()


def test_the_admin_shows_an_editor_only_the_models_they_may_use(editor, models):
    client = signed_in(editor)
    page = client.get("/admin/generation/modelversion/").content.decode()
    assert "studio" in page and "secret" not in page and "house-style" not in page
    assert client.get(f"/admin/generation/modelversion/{models['admins'].pk}/change/"
                      ).status_code == 302  # not found: back to the admin's index
    url = f"/admin/generation/modelversion/{models['editors'].pk}/change/"
    response = client.post(url, {"name": "studio", "trigger_words": "", "version": "",
                                 "is_active": "on", "usable_by": "admin", "description": ""})
    assert response.status_code == 200
    assert "usable_by must be one of viewer, editor" in response.content.decode()
    assert ModelVersion.objects.get(pk=models["editors"].pk).usable_by == "editor"


def test_the_admin_job_filter_offers_an_editor_only_the_models_they_may_use(editor,
                                                                           admin_user, models):
    editor_page = signed_in(editor).get("/admin/generation/job/").content.decode()
    assert "studio" in editor_page and "secret" not in editor_page
    admin_page = signed_in(admin_user).get("/admin/generation/job/").content.decode()
    assert "studio" in admin_page and "secret" in admin_page


def test_the_admin_refuses_a_prompt_set_lora_the_editor_may_not_use_by_the_rule(editor,
                                                                                models):
    prompt_set = PromptSet.objects.create(name="castles", slug="castles",
                                          prompt_template="a {thing}", width=64, height=64)
    client = signed_in(editor)
    url = f"/admin/generation/promptset/{prompt_set.pk}/change/"
    page = client.get(url).content.decode()
    assert "house-style" not in page and "ink" in page
    response = client.post(url, {
        "name": "castles", "slug": "castles", "prompt_template": "a {thing}",
        "width": 64, "height": 64, "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "0",
        "promptsetlora_set-TOTAL_FORMS": "1", "promptsetlora_set-INITIAL_FORMS": "0",
        "promptsetlora_set-0-lora": models["lora"].pk, "promptsetlora_set-0-weight": "0.5"})
    assert response.status_code == 200
    assert refusal("lora", models["lora"].pk, "LoRA") in response.content.decode()
    assert not prompt_set.loras.exists()
