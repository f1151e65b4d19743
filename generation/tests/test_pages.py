import pytest

from generation.models import Job, PromptSet, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


FORM = {"prompt": "a castle", "negative_prompt": "", "size": "64x64", "steps": "4",
        "guidance_scale": "7", "seed": "", "scheduler": "pndm"}


def test_it_queues_a_job_from_the_generate_form(signed_in, viewer, make_lora):
    lora = make_lora(0)
    response = signed_in(viewer).post("/generate/", {**FORM, "lora_1": lora.pk,
                                                     "weight_1": "0.7"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.width, job.height, job.steps) == (64, 64, 4)
    assert job.lora_weights() == [(lora, 0.7)]
    page = signed_in(viewer).get(f"/jobs/{job.pk}/").content.decode()
    assert "a castle" in page and "<progress" in page and "data-poll" in page


def test_it_shows_field_errors_on_the_form(signed_in, viewer, demo_base):
    response = signed_in(viewer).post("/generate/", {**FORM, "prompt": " ", "steps": "500"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "prompt must be 1 to 500 characters" in page
    assert "steps must be between 1 and 150" in page
    assert Job.objects.count() == 0


def test_the_status_fragment_polls_until_the_job_ends(signed_in, viewer, demo_base):
    signed_in(viewer).post("/generate/", FORM)
    job = Job.objects.get()
    fragment = signed_in(viewer).get(f"/jobs/{job.pk}/status/").content.decode()
    assert f'data-poll="/jobs/{job.pk}/status/"' in fragment
    assert f"/jobs/{job.pk}/cancel/" in fragment
    Job.objects.filter(pk=job.pk).update(status=Status.FAILED, error="boom")
    done = signed_in(viewer).get(f"/jobs/{job.pk}/status/").content.decode()
    assert "data-poll" not in done and "boom" in done
    assert f"/jobs/{job.pk}/cancel/" not in done, "a finished job offers no cancel"


def test_the_job_list_polls_while_a_job_is_active(signed_in, viewer, demo_base):
    client = signed_in(viewer)
    client.post("/generate/", FORM)
    page = client.get("/jobs/?page=1").content.decode()
    assert 'data-poll="/jobs/?page=1"' in page and "js/poll.js" in page
    Job.objects.update(status=Status.SUCCEEDED)
    assert "data-poll" not in client.get("/jobs/").content.decode()


def test_it_hides_other_users_jobs(signed_in, viewer, other_viewer, demo_base):
    signed_in(viewer).post("/generate/", FORM)
    job = Job.objects.get()
    assert signed_in(other_viewer).get(f"/jobs/{job.pk}/").status_code == 404
    assert signed_in(other_viewer).post(f"/jobs/{job.pk}/cancel/").status_code == 404


def test_it_lists_my_jobs_with_cancel_and_retry(signed_in, viewer, demo_base):
    client = signed_in(viewer)
    client.post("/generate/", FORM)
    job = Job.objects.get()
    page = client.get("/jobs/").content.decode()
    assert f"/jobs/{job.pk}/cancel/" in page and f"/jobs/{job.pk}/retry/" in page
    client.post(f"/jobs/{job.pk}/cancel/")
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED
    response = client.post(f"/jobs/{job.pk}/retry/")
    remix = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/jobs/{remix.pk}/"
    assert remix.seed == job.seed and remix.remix_of == job


def test_it_launches_a_batch_from_the_set_page(signed_in, editor, viewer, demo_base):
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="{sign}", width=64,
                                          height=64)
    prompt_set.import_csv("sign\naries\nleo\n")
    assert "Launch a batch" not in signed_in(viewer).get("/sets/signs/").content.decode()
    response = signed_in(editor).post("/sets/signs/", {"theme": "gold", "steps": "3"})
    batch = prompt_set.batches.get()
    assert response["Location"] == f"/batches/{batch.pk}/"
    page = signed_in(editor).get(f"/batches/{batch.pk}/").content.decode()
    assert "0 of 2 done" in page and "<progress" in page
    assert "Signs" in signed_in(viewer).get("/sets/").content.decode()
