"""Each user's choice for images flagged NSFW (accounts.User.nsfw_preference): hide, blur
(the default) or show, set on the settings page and in /api/me/; what lists, album pages,
search and the image page then show."""

import pytest
from django.test import Client

from albums.models import Album

pytestmark = pytest.mark.django_db


@pytest.fixture
def gallery(make_user, make_image):
    """vera's album: a safe image and an NSFW one, both with "lighthouse" in the prompt."""
    vera = make_user("vera")
    album = Album.objects.create(name="Coast", owner=vera)
    safe = make_image(created_by=vera, album=album, prompt="a lighthouse")
    nsfw = make_image(created_by=vera, album=album, prompt="a lighthouse", nsfw=True)
    album.cover = nsfw
    album.save()
    return vera, album, safe, nsfw


def listed(client, query=""):
    response = client.get(f"/api/images/?{query}")
    assert response.status_code == 200
    return [row["id"] for row in response.json()["results"]]


def prefer(user, choice):
    user.nsfw_preference = choice
    user.save(update_fields=["nsfw_preference"])


def test_it_shows_and_changes_ones_own_preference_in_the_api(api_as, viewer):
    from rest_framework.test import APIClient

    client = api_as(viewer)
    me = client.get("/api/me/").json()
    assert me == {
        "id": viewer.pk,
        "username": viewer.username,
        "email": viewer.email,
        "display_name": viewer.display_name,
        "role": "viewer",
        "nsfw_preference": "blur",
    }
    response = client.patch("/api/me/", {"nsfw_preference": "hide"}, format="json")
    assert response.status_code == 200 and response.json()["nsfw_preference"] == "hide"
    viewer.refresh_from_db()
    assert viewer.nsfw_preference == "hide"

    for bad, field in (
        ({"nsfw_preference": "maybe"}, "nsfw_preference"),
        ({"username": "someone-else"}, "username"),
        ({"is_staff": True}, "is_staff"),
    ):
        response = client.patch("/api/me/", bad, format="json")
        assert response.status_code == 400, bad
        assert field in response.json(), response.json()
    viewer.refresh_from_db()
    assert (viewer.username, viewer.is_staff, viewer.nsfw_preference) == (
        me["username"],
        False,
        "hide",
    )
    assert APIClient().get("/api/me/").status_code == 401


def test_it_changes_the_preference_on_the_settings_page(client, viewer):
    client.force_login(viewer)
    page = client.get("/account/settings/").content.decode()
    assert 'value="blur"' in page and 'value="hide"' in page and 'value="show"' in page
    response = client.post("/account/settings/", {"nsfw_preference": "show"})
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.nsfw_preference == "show"
    response = client.post("/account/settings/", {"nsfw_preference": "maybe"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    viewer.refresh_from_db()
    assert viewer.nsfw_preference == "show"


def test_hide_leaves_nsfw_images_out_of_the_api_lists_and_search(gallery, api_as):
    vera, album, safe, nsfw = gallery
    client = api_as(vera)

    def covers():
        detail = client.get(f"/api/albums/{album.pk}/").json()["cover_thumbnail_url"]
        listed_albums = client.get("/api/albums/").json()["results"]
        return [detail, *(a["cover_thumbnail_url"] for a in listed_albums if a["id"] == album.pk)]

    assert listed(client) == [nsfw.pk, safe.pk]
    assert covers() == [f"http://testserver/media/images/{nsfw.pk}/thumbnail/"] * 2
    prefer(vera, "hide")
    assert listed(client) == [safe.pk]
    assert covers() == [None, None]  # the NSFW cover, as the album list page hides it
    assert listed(client, f"album={album.pk}") == [safe.pk]
    assert listed(client, "search=lighthouse") == [safe.pk]
    assert listed(client, "nsfw=true") == []
    # ...but never out of the owner's reach by id.
    response = client.get(f"/api/images/{nsfw.pk}/")
    assert response.status_code == 200 and response.json()["nsfw"] is True
    prefer(vera, "show")
    assert listed(client, "search=lighthouse") == [nsfw.pk, safe.pk]


def test_the_pages_hide_blur_or_show_nsfw_images_by_preference(gallery, make_image):
    vera, album, safe, nsfw = gallery
    browser = Client()
    browser.force_login(vera)

    def album_page():
        return browser.get(f"/albums/{album.slug}/").content.decode()

    def covers():
        return browser.get("/albums/").content.decode()

    def image_page():
        response = browser.get(f"/images/{nsfw.pk}/")
        assert response.status_code == 200  # whatever the choice
        return response.content.decode()

    # blur, the default: both shown, the NSFW one blurred until clicked
    assert album_page().count('class="card nsfw"') == 1
    assert f"/media/images/{nsfw.pk}/thumbnail/" in album_page()
    assert 'class="card nsfw"' in covers()
    assert 'class="full nsfw"' in image_page()

    prefer(vera, "hide")
    page = album_page()
    assert f"/media/images/{nsfw.pk}/thumbnail/" not in page
    assert f"/media/images/{safe.pk}/thumbnail/" in page
    assert "NSFW cover hidden" in covers()
    assert f"/media/images/{nsfw.pk}/thumbnail/" not in covers()
    assert 'class="full nsfw"' in image_page()  # opened by its id: shown, blurred

    prefer(vera, "show")
    assert 'nsfw"' not in album_page()
    assert f"/media/images/{nsfw.pk}/thumbnail/" in album_page()
    assert 'class="card nsfw"' not in covers()
    assert 'class="full"' in image_page()


def test_hide_leaves_nsfw_images_out_of_the_generate_pages_strip(gallery, client):
    vera, album, safe, nsfw = gallery
    client.force_login(vera)
    page = client.get("/generate/").content.decode()
    assert f'init_image={nsfw.pk}" title="Image {nsfw.pk}" class="nsfw"' in page
    prefer(vera, "hide")
    page = client.get("/generate/").content.decode()
    assert f"init_image={nsfw.pk}" not in page and f"init_image={safe.pk}" in page
