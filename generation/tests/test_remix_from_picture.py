"""Remixing a picture made elsewhere: the generate page starts from what its tool wrote
(albums/metadata.py read it at ingest), with the sampler mapped to our scheduler and the
model hash or name to a registered model, and says what could not be carried over."""

import re

import pytest

from albums.ingest import store_image
from albums.models import Album
from albums.tests import other_tools as made_elsewhere
from generation.engine.pipelines import scheduler_for_sampler
from generation.models import Job, ModelVersion

pytestmark = pytest.mark.django_db


def stored(data, owner):
    return store_image(data, filename="picture.png", source="upload", created_by=owner)[0]


def form_values(page):
    """The values the generate form shows: inputs, selected options, textareas."""
    values = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page))
    values.update(re.findall(r'<textarea[^>]*name="(\w+)"[^>]*>\s*([^<]*)</textarea>', page))
    for name, options in re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        if chosen:
            values[name] = chosen.group(1)
    return values


def test_it_starts_the_generate_page_from_an_a1111_picture(client, viewer, demo_base):
    image = stored(made_elsewhere.a1111_png(model_hash=demo_base.short_hash), viewer)
    client.force_login(viewer)
    detail = client.get(f"/images/{image.pk}/").content.decode()
    assert f"/generate/?from_image={image.pk}" in detail

    page = client.get(f"/generate/?from_image={image.pk}").content.decode()
    values = form_values(page)
    assert values["prompt"] == made_elsewhere.PROMPT
    assert values["negative_prompt"] == made_elsewhere.NEGATIVE
    assert (values["size"], values["steps"], values["guidance_scale"], values["seed"]) == (
        "512x768", "28", "6.5", "1234567")
    assert values["scheduler"] == "dpmpp_2m"  # "DPM++ 2M Karras"
    assert values["model"] == str(demo_base.pk)  # matched by A1111's short hash
    assert "used Karras sigmas" in page

    # Sent as shown, it queues a job with the picture's parameters.
    response = client.post("/generate/", {**values, "lora_1": "", "weight_1": "1"})
    job = Job.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (job.prompt, job.negative_prompt, job.width, job.height, job.steps, job.seed,
            job.scheduler, job.model) == (made_elsewhere.PROMPT, made_elsewhere.NEGATIVE,
                                          512, 768, 28, 1234567, "dpmpp_2m", demo_base)


def test_it_names_the_model_that_is_not_registered(client, viewer, demo_base):
    image = stored(made_elsewhere.a1111_png(model_hash="0123456789"), viewer)
    client.force_login(viewer)
    page = client.get(f"/generate/?from_image={image.pk}").content.decode()
    assert "The model dreamy_v2 (hash 0123456789) is not registered here" in page
    assert form_values(page).get("model", "") == ""  # the default model


def test_it_matches_a_comfyui_model_by_its_file_name(client, viewer, demo_base):
    sdxl = ModelVersion.objects.create(name="sd_xl_base_1.0", kind="base", family="sdxl",
                                       source="/models/sd_xl_base_1.0.safetensors")
    image = stored(made_elsewhere.comfyui_png(), viewer)
    client.force_login(viewer)
    values = form_values(client.get(f"/generate/?from_image={image.pk}").content.decode())
    assert values["model"] == str(sdxl.pk)
    assert (values["scheduler"], values["size"], values["seed"]) == ("euler_a", "1024x832",
                                                                     "42")


def test_it_says_which_sampler_we_do_not_have(client, viewer, demo_base):
    image = stored(made_elsewhere.fooocus_png(), viewer)
    client.force_login(viewer)
    page = client.get(f"/generate/?from_image={image.pk}").content.decode()
    assert "The sampler dpmpp_2m_sde_gpu is not one we have" in page
    assert "juggernautXL_v8Rundiffusion (hash abcdef0123) is not registered" in page
    assert form_values(page)["prompt"] == made_elsewhere.PROMPT


def test_it_starts_from_an_invokeai_picture(client, viewer, demo_base):
    image = stored(made_elsewhere.invokeai_png(), viewer)
    client.force_login(viewer)
    values = form_values(client.get(f"/generate/?from_image={image.pk}").content.decode())
    assert (values["scheduler"], values["size"], values["steps"]) == ("euler_a", "768x512",
                                                                      "25")


def test_it_never_starts_from_a_strangers_picture(client, viewer, other_viewer, demo_base):
    image = stored(made_elsewhere.a1111_png(), viewer)
    client.force_login(other_viewer)
    assert client.get(f"/generate/?from_image={image.pk}").status_code == 404
    assert client.get("/generate/?from_image=x").status_code == 404
    # Shared with them in a public album, it is theirs to start from.
    album = Album.objects.create(name="Shared", owner=viewer, visibility="public")
    album.add_images([image], by=viewer)
    assert client.get(f"/generate/?from_image={image.pk}").status_code == 200


@pytest.mark.parametrize("sampler, expected", [
    ("Euler a", ("euler_a", False)), ("euler_ancestral", ("euler_a", False)),
    ("DPM++ 2M Karras", ("dpmpp_2m", True)), ("dpmpp_2m_k", ("dpmpp_2m", True)),
    ("PLMS", ("pndm", False)), ("LMS Karras", ("lms", True)), ("DDIM", ("ddim", False)),
    ("k_euler", ("euler", False)), ("dpmpp_2m_sde_gpu", (None, False)),
    ("DPM++ SDE", (None, False)),
])
def test_it_maps_other_tools_sampler_names_to_our_schedulers(sampler, expected):
    assert scheduler_for_sampler(sampler) == expected
