import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Job, ModelVersion, PromptSet, Status
from generation.submit import submit_job
from generation.validation import validate_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, editor):
    client.force_login(editor)
    return client


def queued_job(user, **params):
    return submit_job(user, validate_generation({"prompt": "a fox", "width": 64,
                                                 "height": 64, "steps": 3, **params}))


def test_it_lists_jobs_with_filters_and_search(admin_client, viewer, demo_base):
    queued_job(viewer, prompt="a red fox")
    queued_job(viewer, prompt="a blue whale")
    page = admin_client.get("/admin/generation/job/?q=whale&status__exact=queued")
    assert page.status_code == 200
    text = page.content.decode()
    assert "a blue whale" in text and "a red fox" not in text
    assert "<progress" in text


def test_it_cancels_and_retries_jobs_from_the_admin(admin_client, viewer, demo_base):
    job = queued_job(viewer)
    admin_client.post("/admin/generation/job/", {"action": "cancel_jobs",
                                                 "_selected_action": [job.pk]})
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED
    admin_client.post("/admin/generation/job/", {"action": "retry_jobs",
                                                 "_selected_action": [job.pk]})
    remix = Job.objects.get(remix_of=job)
    assert remix.status == Status.QUEUED and remix.seed == job.seed


def test_it_imports_prompt_set_items_from_csv_in_the_admin(admin_client):
    prompt_set = PromptSet.objects.create(name="Zodiac", prompt_template="the sign of {sign}")
    url = f"/admin/generation/promptset/{prompt_set.pk}/import-csv/"
    bad = admin_client.post(url, {"file": SimpleUploadedFile("z.csv", b"name\nleo\n")})
    assert "sign" in bad.content.decode() and prompt_set.items.count() == 0
    response = admin_client.post(url, {"file": SimpleUploadedFile("z.csv",
                                                                  b"sign\naries\nleo\n")})
    assert response.status_code == 302
    assert [i.values["sign"] for i in prompt_set.items.all()] == ["aries", "leo"]
    assert "Import items from CSV" in admin_client.get(
        f"/admin/generation/promptset/{prompt_set.pk}/change/").content.decode()


def test_it_uploads_a_lora_in_the_admin_and_refuses_a_bad_file(admin_client, demo_base,
                                                              demo_loras):
    form = {"name": "ink", "kind": "lora", "source": "", "family": "sd15",
            "trigger_words": "inkwash", "version": "1", "is_active": "on", "description": ""}
    bad = admin_client.post("/admin/generation/modelversion/add/",
                            {**form, "file": SimpleUploadedFile("x.safetensors", b"nope")})
    assert bad.status_code == 200 and "safetensors" in bad.content.decode()
    assert not ModelVersion.objects.loras().exists()
    with open(demo_loras[0], "rb") as f:
        good = admin_client.post("/admin/generation/modelversion/add/",
                                 {**form, "file": SimpleUploadedFile("ink.safetensors",
                                                                     f.read())})
    assert good.status_code == 302
    lora = ModelVersion.objects.loras().get()
    assert lora.sha256 and lora.trigger_words == "inkwash" and lora.file
    assert lora.sha256[:10] in admin_client.get(
        "/admin/generation/modelversion/").content.decode()


def test_it_makes_another_base_the_default_from_the_admin(admin_client, demo_base,
                                                         demo_model_dir):
    other = ModelVersion.from_source(name="other", kind="base",
                                     source=str(demo_model_dir)).register()
    admin_client.post("/admin/generation/modelversion/", {"action": "make_default",
                                                          "_selected_action": [other.pk]})
    assert ModelVersion.objects.default_base() == other


def test_it_keeps_viewers_out_of_the_admin(client, viewer):
    client.force_login(viewer)
    response = client.get("/admin/generation/job/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
