"""The inpainting mask editor in a real chromium: draw a mask with the mouse over a red
circle on white, submit "a green square", and a real worker (the demo model that draws)
returns the inpainted result: green where the stroke went, the picture's own pixels
elsewhere."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from albums.ingest import store_image
from albums.models import Image
from generation.engine.judge import colour_counts
from generation.engine.world import Spec, render
from generation.models import Job

from .engine_helpers import pixels, png_of

# Backend-neutral (conftest.py): a browser walk; the views and the worker it drives have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def read(image):
    with default_storage.open(image.file.name, "rb") as stored:
        picture = PILImage.open(io.BytesIO(stored.read()))
        picture.load()
    return picture


def test_it_draws_a_mask_with_the_mouse_and_gets_an_inpainted_result(
        start_worker, sign_in_page, live_server, viewer, demo_base):
    start_worker(OMP_NUM_THREADS=1)  # the demo model's layers are too small for more
    source = render(Spec("circle", "red", "white"))
    circle, _ = store_image(png_of(source), filename="circle.png",
                            source=Image.Source.UPLOAD, created_by=viewer)
    page = sign_in_page(viewer)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}/images/{circle.pk}/")
    page.click("text=Inpaint")
    page.wait_for_selector("#mask-canvas")
    page.fill("textarea[name=prompt]", "a green square")
    # The demo model's settings (docs/performance.md): 20 steps at guidance 1.5.
    page.fill("input[name=steps]", "20")
    page.fill("input[name=guidance_scale]", "1.5")
    page.fill("input[name=seed]", "1")
    page.fill("input[name=mask_blur]", "0")
    page.fill("#mask-brush", "128")  # a range input: fill sets its value

    # Broad strokes across the upper left quarter of the picture.
    page.locator("#mask-canvas").scroll_into_view_if_needed()
    box = page.locator("#mask-canvas").bounding_box()
    on_top = page.evaluate(f"() => document.elementFromPoint({box['x'] + box['width'] * 0.15},"
                           f" {box['y'] + box['height'] * 0.2})?.outerHTML.slice(0, 120)")
    for row in (0.2, 0.4):  # two strokes: a patch of about a third of the picture
        page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * row)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * row,
                        steps=8)
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
    picture = read(job.images.get()).convert("RGB")
    result = pixels(picture)
    kept = mask == 0
    assert np.array_equal(result[kept], pixels(source)[kept]), \
        "the pixels outside the mask are the picture's own"
    # The judge's colours where the stroke went: green, the commonest after the white.
    stroke = colour_counts(picture, mask == 255)
    assert max((c for c in stroke if c != "white"), key=stroke.get) == "green", stroke
    assert stroke["green"] > 0.25 * (mask == 255).sum(), stroke
