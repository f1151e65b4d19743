"""Clip skip, as A1111 users expect it: a generation parameter (GenerationParams), checked
by its rule, stored with the job, passed to the pipeline and written in the PNG text."""

import pytest

from albums.ingest import store_image
from albums.tests import other_tools as made_elsewhere
from generation.engine.params import GenerationParams
from generation.engine.pipelines import PipelineCache, alias_text_model
from generation.models import Job

QUICK = GenerationParams("a red castle", width=64, height=64, steps=3, seed=11)


def test_it_conditions_on_an_earlier_layer_and_says_so(demo_model_dir):
    import torch
    from diffusers import StableDiffusionPipeline

    cache = PipelineCache()
    last = cache.generate(str(demo_model_dir), QUICK)
    skipped = cache.generate(str(demo_model_dir), GenerationParams(
        **{**QUICK.__dict__, "clip_skip": 2}))
    assert last[0].tobytes() != skipped[0].tobytes()
    # What diffusers draws with one layer skipped (its count: A1111's 2 is 1).
    direct = StableDiffusionPipeline.from_pretrained(demo_model_dir, safety_checker=None)
    alias_text_model(direct)
    direct = direct(
        "a red castle", negative_prompt="", width=64, height=64, num_inference_steps=3,
        guidance_scale=7.5, generator=[torch.Generator("cpu").manual_seed(11)],
        clip_skip=1).images[0]
    assert skipped[0].tobytes() == direct.tobytes()
    assert "Clip skip: 2" in skipped.parameters_text(0)
    assert "Clip skip" not in last.parameters_text(0)


@pytest.mark.django_db
def test_it_checks_and_stores_clip_skip(api_as, viewer, demo_base):
    client = api_as(viewer)
    job = {"prompt": "a castle", "width": 64, "height": 64, "steps": 4}
    refused = client.post("/api/jobs/", {**job, "clip_skip": 13}, format="json")
    assert refused.status_code == 400
    assert refused.json()["clip_skip"] == ["clip_skip must be between 1 and 12; got 13."]
    accepted = client.post("/api/jobs/", {**job, "clip_skip": 2}, format="json")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["clip_skip"] == 2
    assert Job.objects.get(pk=accepted.json()["id"]).generation_params().clip_skip == 2
    default = client.post("/api/jobs/", job, format="json").json()
    assert default["clip_skip"] == 1


@pytest.mark.django_db
def test_a_remix_keeps_the_pictures_clip_skip(client, viewer, demo_base):
    image, _ = store_image(made_elsewhere.a1111_png(), filename="a.png", source="upload",
                           created_by=viewer)
    assert image.params["clip_skip"] == 2
    client.force_login(viewer)
    page = client.get(f"/generate/?from_image={image.pk}").content.decode()
    assert 'name="clip_skip" value="2"' in page
