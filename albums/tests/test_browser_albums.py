"""The gallery in a real browser: upload, add to an album, NSFW blur and the NSFW choice,
caption progress."""

import re

import pytest
from playwright.sync_api import expect

from albums.models import Album, CaptionRun, Image

from .images import png_bytes

# Backend-neutral (conftest.py): a browser walk; the views it drives have their own tests on both
# databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


@pytest.fixture
def csp_violations(page):
    """Console messages about the Content-Security-Policy: inline scripts or styles."""
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    return lambda: [text for text in messages if "Content Security Policy" in text]


def loaded_width(page, selector):
    """The natural width of the picture once the browser has loaded it (0: it failed)."""
    page.wait_for_function(f"() => document.querySelector({selector!r}).complete")
    return page.locator(selector).evaluate("img => img.naturalWidth")


def create_album(page, name):
    page.locator("header nav").get_by_role("link", name="Albums").click()
    page.fill("input[name=name]", name)
    page.get_by_role("button", name="Create album").click()
    expect(page.locator("h1")).to_have_text(name)


def test_it_uploads_an_image_adds_it_to_an_album_and_shows_it_there(
    sign_in_page, make_user, live_server, csp_violations
):
    user = make_user("bea", "viewer")
    page = sign_in_page(user)
    create_album(page, "Best of")
    create_album(page, "Holiday")

    page.set_input_files("input[name=file]", files=[
        {"name": "sunset.png", "mimeType": "image/png", "buffer": png_bytes((250, 120, 0))}
    ])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator(".messages")).to_have_text("Uploaded 1 images to Holiday.")
    image = Image.objects.get()
    assert image.created_by == user

    page.locator(".thumbs a").first.click()
    expect(page.locator("h1")).to_have_text(f"Image {image.pk}")
    assert loaded_width(page, "figure.full img") == 64
    page.select_option("select[name=album]", label="Best of")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".messages")).to_have_text("Added the image to Best of.")

    page.locator(".albums-of-image").get_by_role("link", name="Best of").click()
    expect(page.locator("h1")).to_have_text("Best of")
    thumbnail = page.locator(".thumbs img")
    expect(thumbnail).to_have_count(1)
    expect(thumbnail).to_have_attribute("src", f"/media/images/{image.pk}/thumbnail/")
    expect(thumbnail).to_have_attribute("loading", "lazy")
    assert loaded_width(page, ".thumbs img") == 64  # served by albums/files.py
    assert list(Album.objects.get(name="Best of").images.all()) == [image]
    assert csp_violations() == []


def test_it_blurs_nsfw_images_until_clicked(
    sign_in_page, make_user, make_image, live_server, csp_violations
):
    user = make_user("bea", "viewer")
    album = Album.objects.create(name="Night", owner=user)
    make_image(album=album, nsfw=True)
    page = sign_in_page(user)
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    card = page.locator(".thumbs .card")
    picture = card.locator("img")

    assert "blur" in picture.evaluate("img => getComputedStyle(img).filter")
    picture.click()

    expect(card).to_have_class(re.compile(r"\brevealed\b"))
    assert picture.evaluate("img => getComputedStyle(img).filter") == "none"
    assert page.url.endswith(f"/albums/{album.slug}/")  # the first click only reveals
    assert csp_violations() == []


def test_the_settings_page_chooses_to_show_or_hide_nsfw_images(
    sign_in_page, make_user, make_image, live_server, csp_violations
):
    user = make_user("bea", "viewer")
    album = Album.objects.create(name="Night", owner=user)
    make_image(album=album, nsfw=True)
    make_image(album=album)
    page = sign_in_page(user)

    def choose(label):
        page.locator("header nav").get_by_role("link", name="Settings").click()
        page.get_by_label(label).check()
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_have_text("Settings saved.")
        page.goto(f"{live_server.url}/albums/{album.slug}/")

    choose("Show them")
    pictures = page.locator(".thumbs img")
    expect(pictures).to_have_count(2)
    assert pictures.evaluate_all("imgs => imgs.map(img => getComputedStyle(img).filter)") == [
        "none", "none"]
    choose("Hide them from lists")
    expect(pictures).to_have_count(1)
    assert csp_violations() == []


def test_it_shows_a_caption_runs_progress_as_it_goes(
    sign_in_page, make_user, live_server, csp_violations
):
    user = make_user("bea", "viewer")
    album = Album.objects.create(name="Harbour", owner=user)
    run = CaptionRun.objects.create(album=album, created_by=user)
    run.start("elsewhere:1", total=3)
    page = sign_in_page(user)
    page.goto(f"{live_server.url}/albums/{album.slug}/")
    progress = page.locator(".caption-run progress")
    expect(page.locator(".caption-run-text")).to_have_text("Captioning: 0 of 3 images.")

    run.advance()
    expect(page.locator(".caption-run-text")).to_have_text("Captioning: 1 of 3 images.")
    run.advance()
    run.advance()
    run.succeed()

    expect(page.locator(".caption-run-text")).to_have_text("Done: captioned 3 of 3 images.")
    assert progress.evaluate("bar => [bar.value, bar.max]") == [3, 3]
    assert csp_violations() == []
