"""The generate page in a real chromium with a real worker: results come in place
(generate.js, poll.js) with their progress bar, LoRAs are added and removed as rows,
refusals show above the form; and a job's own page follows its progress to the image."""

import io

import pytest
from PIL import Image as PILImage

from generation.models import Job

# Backend-neutral (conftest.py): a browser walk; the views and the worker it drives have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def test_it_shows_the_result_in_place_with_lora_rows_and_no_reload(
        worker, sign_in_page, live_server, viewer, make_lora):
    first, second = make_lora(0, name="ink"), make_lora(1, name="watercolour")
    page = sign_in_page(viewer)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/generate/")
    page.evaluate("() => { window.samePage = true; }")  # gone if the page reloads
    page.fill("textarea[name=prompt]", "a lighthouse at dusk")
    page.select_option("select[name=size]", "64x64")
    page.fill("input[name=steps]", "12")

    rows = page.locator("#lora-rows .lora-row")
    assert rows.count() == 1
    page.click("#lora-add")
    page.click("#lora-add")
    assert rows.count() == 3
    rows.nth(1).locator(".lora-remove").click()
    assert [rows.nth(n).locator("select").get_attribute("name") for n in range(2)] == \
        ["lora_1", "lora_3"]
    page.select_option("select[name=lora_1]", str(first.pk))
    page.fill("input[name=weight_1]", "0.5")
    page.select_option("select[name=lora_3]", str(second.pk))
    page.fill("input[name=weight_3]", "-0.25")

    page.click("#generate-form button[type=submit]")
    result = page.locator("#results .job-status")
    result.wait_for()
    assert page.url == f"{live_server.url}/generate/"
    assert result.locator("progress.job-progress").count() == 1
    # poll.js polls the fragment until the job ends and the image replaces it.
    page.locator("#results .job-status.status-succeeded, #results .job-status.status-failed"
                 ).wait_for(timeout=240_000)
    assert result.locator(".status").inner_text() == "succeeded", Job.objects.get().error
    image = result.locator(".results img")
    assert result.locator("progress.job-progress").get_attribute("value") == "1.000"
    assert image.evaluate("img => img.naturalWidth") == 64
    assert page.evaluate("() => window.samePage") is True, "no reload"
    job = Job.objects.get()
    assert job.lora_weights() == [(first, 0.5), (second, -0.25)]

    # A refusal: the rule's words above the form, what was typed kept, nothing queued.
    page.fill("input[name=steps]", "500")
    page.click("#generate-form button[type=submit]")
    page.locator("#form-errors li").wait_for()
    assert "steps must be between 1 and 150" in page.locator("#form-errors").inner_text()
    assert page.input_value("textarea[name=prompt]") == "a lighthouse at dusk"
    assert page.locator("#results .job-status").count() == 1 and Job.objects.count() == 1
    assert page.evaluate("() => window.samePage") is True and not errors


def test_a_jobs_page_watches_the_progress_bar_reach_the_image(
        worker, sign_in_page, live_server, viewer, demo_base):
    page = sign_in_page(viewer)
    page.goto(f"{live_server.url}/generate/")
    page.fill("textarea[name=prompt]", "a red circle on a white background")
    page.select_option("select[name=size]", "64x64")
    # The demo model's own settings (make run's defaults): 20 steps, guidance 1.5.
    page.fill("input[name=steps]", "20")
    page.fill("input[name=guidance_scale]", "1.5")
    page.fill("input[name=seed]", "1")
    page.click("#generate-form button[type=submit]")
    page.locator("#results .job-status").wait_for()
    page.goto(f"{live_server.url}/jobs/{Job.objects.get().pk}/")
    status = page.locator(".job-status")
    assert status.locator("progress.job-progress").count() == 1
    image = status.locator(".results img")
    image.wait_for(timeout=240_000)
    assert status.locator(".status").inner_text() == "succeeded"
    assert status.locator("progress.job-progress").get_attribute("value") == "1.000"
    # The picture the page shows is what the prompt asked for, as the judge reads it.
    from generation.engine.judge import judge

    shown = page.request.get(image.evaluate("img => img.src"))
    assert shown.ok
    reading = judge(PILImage.open(io.BytesIO(shown.body())))
    assert (reading.colour, reading.background) == ("red", "white"), reading

