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


IN_PLACE = {"HTTP_X_REQUESTED_WITH": "generate"}  # generate.js: the page stays, a fragment comes


def test_it_answers_in_place_with_the_jobs_progress(signed_in, viewer, make_lora):
    lora, other = make_lora(0), make_lora(1)
    client = signed_in(viewer)
    page = client.get("/generate/").content.decode()
    assert 'id="results"' in page and 'id="form-errors"' in page
    assert "js/lora_rows.js" in page and "js/generate.js" in page and "js/poll.js" in page
    assert 'name="lora_1"' in page and 'name="lora_2"' not in page, "one row to start"

    # Rows as the page's script numbers them after adding three and removing one.
    response = client.post("/generate/", {**FORM, "lora_1": lora.pk, "weight_1": "0.7",
                                          "lora_2": "", "weight_2": "1.0",
                                          "lora_4": other.pk, "weight_4": "-0.5"}, **IN_PLACE)
    job = Job.objects.get()
    assert response.status_code == 200
    fragment = response.content.decode()
    assert f'id="job-{job.pk}-status"' in fragment and "<progress" in fragment
    assert f'data-poll="/jobs/{job.pk}/status/"' in fragment
    assert job.lora_weights() == [(lora, 0.7), (other, -0.5)]


def test_it_judges_lora_rows_by_the_rules_of_the_api(signed_in, viewer, make_lora):
    loras = [make_lora(0, name=f"style{n}") for n in range(6)]
    client = signed_in(viewer)
    six = {key: value for n, lora in enumerate(loras, start=1)
           for key, value in ((f"lora_{n}", lora.pk), (f"weight_{n}", "0.5"))}
    response = client.post("/generate/", {**FORM, **six}, **IN_PLACE)
    assert response.status_code == 400
    assert 'id="form-errors"' in response.content.decode()
    assert "at most 5 LoRAs; got 6." in response.content.decode()

    twice = client.post("/generate/", {**FORM, "lora_1": loras[0].pk, "lora_3": loras[0].pk},
                        **IN_PLACE)
    assert "style0 is listed twice." in twice.content.decode()
    heavy = client.post("/generate/", {**FORM, "lora_2": loras[1].pk, "weight_2": "3"})
    assert "LoRA weight must be between -2.0 and 2.0; style1 has 3.0." in heavy.content.decode()
    assert 'name="lora_2"' in heavy.content.decode(), "the rows sent come back"
    unknown = client.post("/generate/", {**FORM, "lora_1": "99999"}, **IN_PLACE)
    assert unknown.status_code == 400
    assert ("LoRA 1: loras must be an active LoRA your role may use (its usable_by); "
            "99999 is not.") in unknown.content.decode()
    assert Job.objects.count() == 0


def test_it_answers_in_place_with_the_errors_and_the_limit(signed_in, viewer, demo_base,
                                                        settings):
    client = signed_in(viewer)
    bad = client.post("/generate/", {**FORM, "steps": "500"}, **IN_PLACE)
    assert bad.status_code == 400 and 'id="form-errors"' in bad.content.decode()
    assert "Steps: steps must be between 1 and 150" in bad.content.decode()
    garbled = client.post("/generate/", {**FORM, "seed": "x"}, **IN_PLACE)
    assert "Seed: Enter a whole number." in garbled.content.decode()
    assert Job.objects.count() == 0
    settings.IMAGINEER_MAX_ACTIVE_JOBS = 1
    assert client.post("/generate/", FORM, **IN_PLACE).status_code == 200
    refused = client.post("/generate/", FORM, **IN_PLACE)
    assert refused.status_code == 429 and 'id="form-errors"' in refused.content.decode()
    assert "Retry-After" in refused and "limit is 1" in refused.content.decode()
    assert Job.objects.count() == 1
