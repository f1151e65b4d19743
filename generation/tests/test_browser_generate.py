import pytest

# Backend-neutral (conftest.py): a browser walk; the views and the worker it drives have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def test_it_generates_from_the_form_and_watches_the_progress_bar_reach_the_image(
        worker, sign_in_page, live_server, viewer, demo_base):
    page = sign_in_page(viewer)
    page.goto(f"{live_server.url}/generate/")
    page.fill("textarea[name=prompt]", "a lighthouse at dusk")
    page.select_option("select[name=size]", "64x64")
    page.fill("input[name=steps]", "30")
    page.click("#generate-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    assert page.locator("progress.job-progress").count() == 1
    # htmx polls the status fragment until the job ends and the image replaces it.
    image = page.locator("#job-status .results img")
    image.wait_for(timeout=120_000)
    assert page.locator("#job-status .status").inner_text() == "succeeded"
    assert page.locator("progress.job-progress").get_attribute("value") == "1.000"
    natural_width = image.evaluate("img => img.naturalWidth")
    assert natural_width == 64
