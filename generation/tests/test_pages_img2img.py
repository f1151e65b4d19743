"""The pages of image to image: the image page's and a job's buttons, the generate page
started from an image (the mask editor for inpainting, the strip of the user's images),
and the form submitting a drawn mask."""

import base64

import pytest

from albums.ingest import store_image
from albums.models import Image
from generation.models import Job

from .engine_helpers import box_mask, png_of, red_circle

pytestmark = pytest.mark.django_db

FORM = {"prompt": "a green square", "negative_prompt": "", "size": "64x64", "steps": "4",
        "guidance_scale": "7", "seed": "", "scheduler": "pndm"}


@pytest.fixture
def circle(viewer, media_root):
    image, _ = store_image(png_of(red_circle()), filename="circle.png",
                           source=Image.Source.UPLOAD, created_by=viewer)
    return image


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_image_page_offers_the_image_to_image_starts(client, viewer, circle):
    page = signed_in(client, viewer).get(f"/images/{circle.pk}/").content.decode()
    for mode in ("img2img", "inpaint", "upscale", "variations"):
        assert f"/generate/?init_image={circle.pk}&amp;mode={mode}" in page
    for label in ("Use as starting image", "Inpaint", "Upscale", "Variations"):
        assert label in page


def test_the_generate_page_starts_from_an_image_with_the_mask_editor(client, viewer, circle,
                                                                     demo_base):
    page = signed_in(client, viewer).get(
        f"/generate/?init_image={circle.pk}&mode=inpaint").content.decode()
    assert 'id="mask-canvas"' in page and "js/mask_editor.js" in page
    assert f'name="init_image" value="{circle.pk}"' in page
    assert 'value="64x64" selected' in page
    assert "<script>" not in page, "no inline script (CSP)"
    # The strip of the user's own images to start from.
    assert f'href="/generate/?init_image={circle.pk}"' in page
    upscale = signed_in(client, viewer).get(
        f"/generate/?init_image={circle.pk}&mode=upscale").content.decode()
    assert 'value="128x128" selected' in upscale and "mask-canvas" not in upscale


def test_a_strangers_image_is_not_a_starting_point(client, other_viewer, circle, demo_base):
    response = signed_in(client, other_viewer).get(f"/generate/?init_image={circle.pk}")
    assert response.status_code == 404
    page = signed_in(client, other_viewer).get("/generate/").content.decode()
    assert f"init_image={circle.pk}" not in page, "the strip shows the user's images only"
    response = signed_in(client, other_viewer).post(
        "/generate/", {**FORM, "init_image": circle.pk})
    assert response.status_code == 200 and not Job.objects.exists()
    assert "init_image must be the id of an image you can see" in response.content.decode()


def test_the_form_submits_the_drawn_mask(client, viewer, circle, demo_base):
    data = "data:image/png;base64," + base64.b64encode(png_of(box_mask())).decode()
    response = signed_in(client, viewer).post("/generate/?mode=inpaint", {
        **FORM, "init_image": circle.pk, "mask_data": data, "strength": "1",
        "mask_blur": "2", "keep_unmasked": "on"})
    job = Job.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (job.init_image, job.mask.width, job.mask_blur, job.mode) == (circle, 64, 2,
                                                                         "inpaint")


def test_a_mask_that_is_no_png_is_refused_on_the_form(client, viewer, circle, demo_base):
    response = signed_in(client, viewer).post("/generate/?mode=inpaint", {
        **FORM, "init_image": circle.pk, "mask_data": "data:text/html;base64,PGI+"})
    assert response.status_code == 200 and not Job.objects.exists()
    assert "The mask must be a PNG" in response.content.decode()
