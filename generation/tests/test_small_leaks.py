"""Small leaks to strangers (issue 13, item 8): a retired model's name, a model's path on
the server, a trained LoRA's private album, an album's slug telling of a private album of
the same name, and a redirect to another site after cancelling a job."""

import json
import re

import pytest

from albums import models as album_models
from albums.models import Album
from generation.models import Job, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def retired(demo_model_dir):
    """A retired base model and LoRA whose names viewers must not learn."""
    base = ModelVersion.from_source(name="Project Falcon base", kind="base",
                                    source=str(demo_model_dir), is_active=False).register()
    lora = ModelVersion.objects.create(name="Falcon secret style", kind="lora",
                                       source="/srv/models/falcon.safetensors",
                                       is_active=False)
    return base, lora


def test_a_retired_model_is_named_neither_in_errors_nor_in_the_api_form(
        api_as, viewer, demo_base, retired):
    base, lora = retired
    client = api_as(viewer)
    missing = 99999
    for field, payload, absent in (
            ("model", {"model": base.pk}, {"model": missing}),
            ("loras", {"loras": [{"id": lora.pk, "weight": 1}]},
             {"loras": [{"id": missing, "weight": 1}]})):
        response = client.post("/api/jobs/", {"prompt": "a castle", **payload}, format="json")
        assert response.status_code == 404  # as a missing one, in the same words
        assert "Falcon" not in response.content.decode()
        answer = client.post("/api/jobs/", {"prompt": "a castle", **absent}, format="json")
        pk = base.pk if field == "model" else lora.pk
        assert response.json() == json.loads(
            answer.content.decode().replace(str(missing), str(pk)))
    form = client.get("/api/jobs/", HTTP_ACCEPT="text/html").content.decode()
    assert "demo" in form and "Falcon" not in form
    assert not Job.objects.exists()


def test_validation_names_a_retired_model_by_id_only(viewer, demo_base, retired):
    from django.core.exceptions import ValidationError

    from generation.validation import validate_generation

    base, lora = retired
    with pytest.raises(ValidationError) as error:
        validate_generation({"prompt": "a castle", "model": base}, loras=[(lora, 1.0)])
    assert error.value.message_dict == {
        "model": [f"model must be an active base model; model {base.pk} is retired."],
        "loras": [f"LoRA {lora.pk} is retired."]}


def test_viewers_see_no_server_paths_of_models(api_as, viewer, editor, demo_base,
                                                demo_model_dir):
    hub = ModelVersion.objects.create(name="hub", kind="base", source="example/sd15")
    for user, shown in ((viewer, ""), (editor, str(demo_model_dir))):
        listed = {model["id"]: model for model in
                  api_as(user).get("/api/models/").json()["results"]}
        assert listed[demo_base.pk]["source"] == shown
        assert listed[hub.pk]["source"] == "example/sd15"  # a hub id is no secret
        detail = api_as(user).get(f"/api/models/{demo_base.pk}/").json()
        assert detail["source"] == shown
    page = api_as(viewer).get("/api/models/", HTTP_ACCEPT="text/html").content.decode()
    assert str(demo_model_dir) not in page


def test_a_trained_loras_description_does_not_name_its_album(editor, demo_base, tmp_path,
                                                             make_lora, demo_loras):
    from types import SimpleNamespace

    from training.models import TrainingRun
    from training.tasks import register_lora

    album = Album.objects.create(name="Project Falcon", owner=editor)
    run = TrainingRun.objects.create(name="falcon-style", album=album, base_model=demo_base,
                                     owner=editor)
    result = SimpleNamespace(lora_path=demo_loras[0], losses=[(1, 0.5)], steps_done=4,
                             metadata={"dataset_size": "4"})
    lora = register_lora(run, result)
    assert "Falcon" not in lora.description
    assert lora.description == f"Trained by training run {run.pk} on 4 images with demo."


def test_an_albums_slug_tells_nothing_of_other_albums(viewer, other_viewer, monkeypatch):
    Album.objects.create(name="Project Falcon", owner=other_viewer)  # private, otto's
    Album.objects.create(name="Project Falcon", owner=other_viewer)
    monkeypatch.setattr(album_models, "slug_suffix", lambda: "k3x9qa")
    mine = Album.objects.create(name="Project Falcon", owner=viewer)
    assert mine.slug == "project-falcon-k3x9qa"  # what it is with no other album at all
    draws = iter(["k3x9qa", "k3x9qa", "p0p0p0"])  # a random suffix taken: draw again
    monkeypatch.setattr(album_models, "slug_suffix", lambda: next(draws))
    again = Album.objects.create(name="Project Falcon", owner=viewer)
    assert again.slug == "project-falcon-p0p0p0"
    monkeypatch.undo()
    assert re.fullmatch(r"album-[a-z0-9]{6}", Album.objects.create(name="!!", owner=viewer).slug)


@pytest.mark.parametrize("target, allowed", [
    ("/jobs/", True),
    ("https://evil.example/phish", False),
    ("//evil.example/phish", False),
    ("javascript:alert(1)", False),
])
def test_cancelling_a_job_redirects_only_within_the_site(client, viewer, demo_base, target,
                                                         allowed):
    job = Job.objects.create(owner=viewer, prompt="a castle", model=demo_base, width=64,
                             height=64, steps=4, guidance_scale=7.0, seed=1, scheduler="pndm")
    client.force_login(viewer)
    response = client.post(f"/jobs/{job.pk}/cancel/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == (target if allowed else f"/jobs/{job.pk}/")
