import pytest

# Backend-neutral (conftest.py): a browser walk; the views and the worker it drives have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def test_it_trains_from_the_album_form_and_watches_progress_and_the_loss_chart(
        training_worker, sign_in_page, live_server, editor, make_album, demo_base):
    album = make_album(4)
    training_worker()
    page = sign_in_page(editor)
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    page.click("a.train-lora")
    page.wait_for_url(f"{live_server.url}/albums/{album.slug}/train/")
    assert page.locator("h1").inner_text() == "Train a LoRA from this album"
    for name, value in [("steps", "40"), ("rank", "4"), ("alpha", "4"),
                        ("learning_rate", "0.001"), ("resolution", "64"),
                        ("checkpoint_every", "10"), ("trigger_word", "chk")]:
        page.fill(f"input[name={name}]", value)
    page.click(".train-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/training/*/")

    assert page.locator("progress.run-progress").count() == 1
    # poll.js polls the status fragment: the chart appears as losses come in, and the
    # validation images once the run has succeeded.
    page.locator("#run-status svg.loss-chart polyline.loss").wait_for(timeout=180_000)
    page.locator("#run-status .validation-grid img").first.wait_for(timeout=180_000)
    assert page.locator("#run-status .status").inner_text() == "succeeded"
    assert page.locator("progress.run-progress").get_attribute("value") == "1.000"
    points = page.locator("svg.loss-chart polyline.loss").get_attribute("points")
    assert len(points.split()) == 40
    assert page.locator("#run-status .validation-grid img").count() == 2
    link = page.locator("a.generate-with-lora").get_attribute("href")
    assert link.startswith("/generate/?lora_1=")
