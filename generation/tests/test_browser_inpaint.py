"""The inpainting mask editor in a real chromium: draw a mask with the mouse over a
picture, submit, and a real worker returns the inpainted result."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from albums.ingest import store_image
from albums.models import Image
from generation.models import Job

from .engine_helpers import pixels, png_of, red_circle

# Backend-neutral (conftest.py): a browser walk; the views and the worker it drives have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def read(image):
    with default_storage.open(image.file.name, "rb") as stored:
        picture = PILImage.open(io.BytesIO(stored.read()))
        picture.load()
    return picture


def test_it_draws_a_mask_with_the_mouse_and_gets_an_inpainted_result(
        worker, sign_in_page, live_server, viewer, demo_base):
    circle, _ = store_image(png_of(red_circle()), filename="circle.png",
                            source=Image.Source.UPLOAD, created_by=viewer)
    page = sign_in_page(viewer)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}/images/{circle.pk}/")
    page.click("text=Inpaint")
    page.wait_for_selector("#mask-canvas")
    page.fill("textarea[name=prompt]", "a green square")
    page.fill("input[name=steps]", "4")
    page.fill("input[name=mask_blur]", "0")
    page.fill("#mask-brush", "40")  # a range input: fill sets its value

    # A stroke across the upper left quarter of the picture.
    page.locator("#mask-canvas").scroll_into_view_if_needed()
    box = page.locator("#mask-canvas").bounding_box()
    on_top = page.evaluate(f"() => document.elementFromPoint({box['x'] + box['width'] * 0.15},"
                           f" {box['y'] + box['height'] * 0.2})?.outerHTML.slice(0, 120)")
    page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.2, steps=8)
    page.mouse.up()
    painted = page.evaluate("""() => {
        const canvas = document.getElementById("mask-canvas");
        return canvas.getContext("2d").getImageData(16, 13, 1, 1).data[3];
    }""")
    assert painted == 255 and not errors, (painted, errors, box, on_top)
    page.click("#generate-form button[type=submit]")
    page.locator("#results .job-status .results img").wait_for(timeout=180_000)
    assert page.locator("#results .job-status .status").inner_text() == "succeeded"

    job = Job.objects.get()
    assert job.init_image == circle and job.mode == "inpaint"
    mask = np.asarray(read(job.mask).convert("L"))
    assert mask.shape == (64, 64)
    assert mask[13, 16] == 255 and mask[13, 20] == 255, "the stroke is white"
    assert mask[50, 50] == 0 and mask[60, 5] == 0, "the rest is black"
    result = pixels(read(job.images.get()).convert("RGB"))
    kept = mask == 0
    assert np.array_equal(result[kept], pixels(red_circle())[kept]), \
        "the pixels outside the mask are the picture's own"
    assert not np.array_equal(result[mask == 255], pixels(red_circle())[mask == 255])
