"""Who may see and change which albums and images, role by role.

vera and otto are viewers; each has a private and a public album holding one image they
made, and `loose` is an image nobody owns in no album. Another user's private album, and
images only it holds, answer 404, as if they did not exist.
"""

import pytest

from albums.models import Album
from core.api import NOT_FOUND_IN_REQUEST

from .images import make_image

pytestmark = pytest.mark.django_db

WHO = ["anonymous", "gallery", "vera", "otto", "editor", "admin"]  # gallery: anonymous, on

# album -> status per caller for GET /api/albums/{id}/
SEE_ALBUM = {
    "vera_private": [401, 404, 200, 404, 200, 200],
    "vera_public":  [401, 200, 200, 200, 200, 200],
    "otto_private": [401, 404, 404, 200, 200, 200],
    "otto_public":  [401, 200, 200, 200, 200, 200],
}
# album -> status per caller for PATCH /api/albums/{id}/
CHANGE_ALBUM = {
    "vera_private": [401, 401, 200, 404, 200, 200],
    "vera_public":  [401, 401, 200, 403, 200, 200],
    "otto_private": [401, 401, 404, 200, 200, 200],
    "otto_public":  [401, 401, 403, 200, 200, 200],
}
# image -> status per caller for GET /api/images/{id}/ and for its files
SEE_IMAGE = {
    "vera_private": [401, 404, 200, 404, 200, 200],
    "vera_public":  [401, 200, 200, 200, 200, 200],
    "otto_private": [401, 404, 404, 200, 200, 200],
    "otto_public":  [401, 200, 200, 200, 200, 200],
    "loose":        [401, 404, 404, 404, 200, 200],
}
# image -> status per caller for PATCH /api/images/{id}/. Viewers lack change_image, so
# they are refused (403) before any image is looked up: existence stays hidden.
CHANGE_IMAGE = {
    "vera_private": [401, 401, 403, 403, 200, 200],
    "otto_public":  [401, 401, 403, 403, 200, 200],
    "loose":        [401, 401, 403, 403, 200, 200],
}


@pytest.fixture
def world(viewer, other_viewer, editor, admin_user):
    users = {"vera": viewer, "otto": other_viewer, "editor": editor, "admin": admin_user}
    albums, images = {}, {}
    for n, (owner, visibility) in enumerate(
        [("vera", "private"), ("vera", "public"), ("otto", "private"), ("otto", "public")]
    ):
        name = f"{owner}_{visibility}"
        albums[name] = Album.objects.create(name=name, owner=users[owner],
                                            visibility=visibility)
        images[name] = make_image(n, created_by=users[owner])
        albums[name].add_images([images[name]], by=users[owner])
    images["loose"] = make_image(99, source="generated")
    return users, albums, images


@pytest.fixture
def as_(world, api_client, api_as, settings):
    users = world[0]

    def client(who):
        settings.IMAGINEER_PUBLIC_GALLERY = who == "gallery"
        if who in ("anonymous", "gallery"):
            api_client.credentials()
            return api_client
        return api_as(users[who])

    return client


def statuses(expected, who):
    return {name: row[WHO.index(who)] for name, row in expected.items()}


@pytest.mark.parametrize("who", WHO)
def test_it_shows_albums_by_role(world, as_, who):
    client = as_(who)
    seen = {name: client.get(f"/api/albums/{album.pk}/").status_code
            for name, album in world[1].items()}
    assert seen == statuses(SEE_ALBUM, who)


@pytest.mark.parametrize("who", WHO)
def test_it_lets_owners_and_curators_change_albums(world, as_, who):
    client = as_(who)
    answered, renamed = {}, {}
    for name, album in world[1].items():
        response = client.patch(f"/api/albums/{album.pk}/", {"name": "Renamed"}, format="json")
        answered[name] = response.status_code
        album.refresh_from_db()
        renamed[name] = album.name == "Renamed"
    assert answered == statuses(CHANGE_ALBUM, who)
    assert renamed == {name: status == 200 for name, status in answered.items()}


@pytest.mark.parametrize("who", WHO)
def test_it_lets_owners_and_curators_delete_albums(world, as_, who):
    client = as_(who)
    answered = {name: client.delete(f"/api/albums/{album.pk}/").status_code
                for name, album in world[1].items()}
    expected = {name: 204 if status == 200 else status
                for name, status in statuses(CHANGE_ALBUM, who).items()}
    assert answered == expected
    kept = {name for name, album in world[1].items() if Album.objects.filter(pk=album.pk)}
    assert kept == {name for name, status in answered.items() if status != 204}


@pytest.mark.parametrize("who", WHO)
def test_it_shows_images_and_their_files_by_role(world, as_, who):
    client = as_(who)
    api, files, thumbnails = {}, {}, {}
    for name, image in world[2].items():
        api[name] = client.get(f"/api/images/{image.pk}/").status_code
        files[name] = client.get(f"/media/images/{image.pk}/").status_code
        thumbnails[name] = client.get(f"/media/images/{image.pk}/thumbnail/").status_code
    expected = statuses(SEE_IMAGE, who)
    assert api == expected
    # The file views answer 404 to anyone who may not see the image, signed in or not.
    expected_files = {name: 404 if status == 401 else status for name, status in expected.items()}
    assert files == expected_files
    assert thumbnails == expected_files


@pytest.mark.parametrize("who", WHO)
def test_it_lets_only_curators_change_images(world, as_, who):
    client = as_(who)
    answered, flagged = {}, {}
    for name in CHANGE_IMAGE:
        image = world[2][name]
        response = client.patch(f"/api/images/{image.pk}/", {"nsfw": True}, format="json")
        answered[name] = response.status_code
        image.refresh_from_db()
        flagged[name] = image.nsfw
    assert answered == statuses(CHANGE_IMAGE, who)
    assert flagged == {name: status == 200 for name, status in answered.items()}


LISTED_ALBUMS = {
    "anonymous": None,
    "gallery": {"vera_public", "otto_public"},
    "vera": {"vera_private", "vera_public", "otto_public"},
    "otto": {"otto_private", "otto_public", "vera_public"},
    "editor": {"vera_private", "vera_public", "otto_private", "otto_public"},
    "admin": {"vera_private", "vera_public", "otto_private", "otto_public"},
}
LISTED_IMAGES = {
    "anonymous": None,
    "gallery": {"vera_public", "otto_public"},
    "vera": {"vera_private", "vera_public", "otto_public"},
    "otto": {"otto_private", "otto_public", "vera_public"},
    "editor": {"vera_private", "vera_public", "otto_private", "otto_public", "loose"},
    "admin": {"vera_private", "vera_public", "otto_private", "otto_public", "loose"},
}


@pytest.mark.parametrize("who", WHO)
def test_it_lists_what_each_role_may_see(world, as_, who):
    _, albums, images = world
    client = as_(who)
    for url, objects, expected in [("/api/albums/", albums, LISTED_ALBUMS[who]),
                                   ("/api/images/", images, LISTED_IMAGES[who])]:
        response = client.get(url)
        if expected is None:
            assert response.status_code == 401
            continue
        names = {name for name, obj in objects.items()
                 if obj.pk in {item["id"] for item in response.json()["results"]}}
        assert names == expected, url


@pytest.mark.parametrize("who, status", [("anonymous", 401), ("gallery", 401),
                                         ("vera", 201), ("editor", 201)])
def test_it_lets_signed_in_users_create_albums_they_own(world, as_, who, status):
    response = as_(who).post("/api/albums/", {"name": "New album", "owner": 1}, format="json")
    assert response.status_code == status
    if status == 201:
        album = Album.objects.get(pk=response.json()["id"])
        assert album.owner == world[0][who]
        assert album.visibility == "private"


def test_it_does_not_let_a_viewer_add_images_they_cannot_see(world, as_):
    _, albums, images = world
    response = as_("vera").post(
        f"/api/albums/{albums['vera_private'].pk}/images/",
        {"image_ids": [images["otto_private"].pk]}, format="json",
    )
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND_IN_REQUEST,
                               "image_ids": [f"No images with ids {[images['otto_private'].pk]}."]}
    assert not albums["vera_private"].images.filter(pk=images["otto_private"].pk).exists()


def test_it_lets_a_viewer_add_public_images_to_their_album(world, as_):
    _, albums, images = world
    response = as_("vera").post(
        f"/api/albums/{albums['vera_private'].pk}/images/",
        {"image_ids": [images["otto_public"].pk]}, format="json",
    )
    assert response.status_code == 200
    assert albums["vera_private"].images.filter(pk=images["otto_public"].pk).exists()
