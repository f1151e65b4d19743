"""Pictures made elsewhere keep how they were made: the metadata Automatic1111, ComfyUI,
InvokeAI and Fooocus write is read at ingest (upload, import) into the image's prompt and
params, and shown on the image page. The PNGs are written by other_tools.py."""


import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from albums.metadata import read_generation_metadata
from albums.models import Album, Image

from .images import png_bytes, zip_of
from .other_tools import (
    NEGATIVE,
    PROMPT,
    a1111_png,
    comfyui_png,
    fooocus_png,
    invokeai_png,
    png_with_text,
)

# What each tool's PNG must give: its params beyond prompt and negative prompt.
EXPECTED = {
    "a1111": (a1111_png, {"generator": "AUTOMATIC1111", "sampler": "DPM++ 2M Karras",
                          "steps": 28, "guidance_scale": 6.5, "seed": 1234567, "width": 512,
                          "height": 768, "model": "dreamy_v2", "model_hash": "0123456789",
                          "clip_skip": 2}),
    "comfyui": (comfyui_png, {"generator": "ComfyUI", "sampler": "euler_ancestral",
                              "schedule": "normal", "steps": 30, "guidance_scale": 7.0,
                              "seed": 42, "width": 1024, "height": 832,
                              "model": "sd_xl_base_1.0.safetensors", "clip_skip": 2}),
    "invokeai": (invokeai_png, {"generator": "InvokeAI", "sampler": "euler_a", "steps": 25,
                                "guidance_scale": 8.0, "seed": 99, "width": 768,
                                "height": 512, "model": "stable-diffusion-v1-5"}),
    "fooocus": (fooocus_png, {"generator": "Fooocus", "sampler": "dpmpp_2m_sde_gpu",
                              "schedule": "karras", "steps": 30, "guidance_scale": 4.0,
                              "seed": 31337, "width": 1152, "height": 896,
                              "model": "juggernautXL_v8Rundiffusion",
                              "model_hash": "abcdef0123"}),
}


def upload(name, data):
    return SimpleUploadedFile(name, data, content_type="image/png")


@pytest.mark.parametrize("tool", list(EXPECTED))
def test_it_reads_each_tools_metadata_into_an_uploaded_image(api_as, viewer, tool):
    make, expected = EXPECTED[tool]
    response = api_as(viewer).post("/api/images/", {"file": [upload(f"{tool}.png", make())]},
                                   format="multipart")
    assert response.status_code == 201, response.content
    image = Image.objects.get(pk=response.json()[0]["id"])
    assert image.prompt == PROMPT
    assert image.params == {**expected, "negative_prompt": NEGATIVE}
    # The API shows them as it shows a generated image's.
    shown = api_as(viewer).get(f"/api/images/{image.pk}/").json()
    assert shown["prompt"] == PROMPT
    assert shown["params"]["generator"] == expected["generator"]


def test_it_reads_the_metadata_of_imported_pictures(api_as, viewer):
    album = Album.objects.create(name="From A1111", owner=viewer)
    archive = zip_of([("a.png", a1111_png()), ("c.png", comfyui_png())])
    response = api_as(viewer).post(
        f"/api/albums/{album.pk}/import/",
        {"file": [SimpleUploadedFile("set.zip", archive, content_type="application/zip")]})
    assert response.status_code == 201, response.content
    images = [Image.objects.get(pk=item["id"]) for item in response.json()["images"]]
    assert [image.source for image in images] == ["import", "import"]
    assert [image.params["generator"] for image in images] == ["AUTOMATIC1111", "ComfyUI"]
    assert {image.prompt for image in images} == {PROMPT}


def test_it_stores_a_picture_whose_metadata_is_malformed_without_it(api_as, viewer):
    broken = png_with_text({"prompt": "{not json", "workflow": "[]"}, color=(1, 1, 1))
    odd = png_with_text({"parameters": "a cat\nSteps: many, Sampler: Euler, CFG scale: NaN, "
                                       "Seed: -5, Size: 9x"}, color=(2, 2, 2))
    response = api_as(viewer).post(
        "/api/images/", {"file": [upload("broken.png", broken), upload("odd.png", odd)]},
        format="multipart")
    assert response.status_code == 201, response.content
    broken_image, odd_image = (Image.objects.get(pk=item["id"]) for item in response.json())
    assert (broken_image.prompt, broken_image.params) == ("", {})
    # What is a number is kept; what is not is left out, never stored as given.
    assert odd_image.prompt == "a cat"
    assert odd_image.params == {"generator": "AUTOMATIC1111", "sampler": "Euler",
                                "width": 64, "height": 48}


def test_it_keeps_plain_pictures_without_params(api_as, viewer):
    response = api_as(viewer).post("/api/images/", {"file": [upload("p.png", png_bytes())]},
                                   format="multipart")
    image = Image.objects.get(pk=response.json()[0]["id"])
    assert (image.prompt, image.params) == ("", {})


def test_it_cuts_overlong_text_and_never_keeps_nul_characters():
    text = "x" * 20_000 + "\x00\nSteps: 20, Sampler: " + "E" * 500 + ", CFG scale: 7, Seed: 1"
    prompt, params = read_generation_metadata(png_with_text({"parameters": text}))
    assert len(prompt) == 10_000 and "\x00" not in prompt
    assert len(params["sampler"]) == 200


def test_it_shows_the_metadata_on_the_image_page(client, viewer):
    from albums.ingest import store_image

    image, _ = store_image(a1111_png(), filename="a.png", source="upload",
                           created_by=viewer)
    client.force_login(viewer)
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert "made with AUTOMATIC1111" in page
    assert PROMPT in page and "DPM++ 2M Karras" in page and "dreamy_v2" in page
