"""/api/albums/: create, change, add and remove images, reorder, cover."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from albums.models import Album
from core.api import NOT_FOUND_IN_REQUEST

from .images import make_image

pytestmark = pytest.mark.django_db


def entries(album):
    return list(album.entries.values_list("image_id", flat=True))


def test_it_creates_albums_with_unique_slugs(api_as, viewer):
    client = api_as(viewer)
    first = client.post("/api/albums/", {"name": "Red Things!"}, format="json").json()
    second = client.post("/api/albums/", {"name": "Red things", "visibility": "public",
                                          "description": "more"}, format="json").json()
    assert re.fullmatch(r"red-things-[a-z0-9]{6}", first["slug"])
    assert re.fullmatch(r"red-things-[a-z0-9]{6}", second["slug"])
    assert first["slug"] != second["slug"]
    assert (second["visibility"], second["description"], second["image_count"]) == (
        "public", "more", 0)
    assert second["owner"] == viewer.pk
    assert second["cover_thumbnail_url"] is None


def test_it_names_bad_album_fields(api_as, viewer):
    response = api_as(viewer).post("/api/albums/", {"name": "", "visibility": "secret"},
                                   format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "visibility"}
    assert not Album.objects.exists()


def test_it_adds_images_idempotently_and_appends_them(api_as, viewer):
    album = Album.objects.create(name="A", owner=viewer)
    a, b, c = (make_image(n, created_by=viewer) for n in range(3))
    client = api_as(viewer)
    url = f"/api/albums/{album.pk}/images/"
    response = client.post(url, {"image_ids": [b.pk, a.pk]}, format="json")
    assert response.status_code == 200
    assert response.json()["image_count"] == 2
    client.post(url, {"image_ids": [a.pk, c.pk, c.pk]}, format="json")
    assert entries(album) == [b.pk, a.pk, c.pk]
    assert list(album.entries.values_list("position", flat=True)) == [0, 1, 2]
    assert album.entries.get(image=c).added_by == viewer
    assert client.get(f"/api/albums/{album.pk}/").json()["cover_thumbnail_url"].endswith(
        f"/media/images/{b.pk}/thumbnail/")


def test_it_removes_images_from_the_album_only(api_as, viewer):
    album = Album.objects.create(name="A", owner=viewer)
    a, b = make_image(1, created_by=viewer), make_image(2, created_by=viewer)
    album.add_images([a, b])
    response = api_as(viewer).delete(f"/api/albums/{album.pk}/images/",
                                     {"image_ids": [a.pk, 12345]}, format="json")
    assert response.status_code == 200
    assert response.json()["image_count"] == 1
    assert entries(album) == [b.pk]
    a.refresh_from_db()  # the image itself stays


@pytest.mark.parametrize("body", [{}, {"image_ids": "1,2"}, {"image_ids": [1, "2"]},
                                  {"image_ids": [True]},
                                  {"image_ids": [2**64]}])  # past 64 bits: was a 500
def test_it_names_a_bad_image_ids_body(api_as, viewer, body):
    album = Album.objects.create(name="A", owner=viewer)
    response = api_as(viewer).post(f"/api/albums/{album.pk}/images/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"image_ids": ["Send a list of integer image ids."]}


def test_it_reorders_images(api_as, viewer):
    album = Album.objects.create(name="A", owner=viewer)
    a, b, c, d = (make_image(n, created_by=viewer) for n in range(4))
    album.add_images([a, b, c, d])
    client = api_as(viewer)
    url = f"/api/albums/{album.pk}/order/"
    response = client.patch(url, {"image_ids": [d.pk, b.pk]}, format="json")
    assert response.status_code == 200
    assert entries(album) == [d.pk, b.pk, a.pk, c.pk]
    assert list(album.entries.values_list("position", flat=True)) == [0, 1, 2, 3]
    stranger = make_image(9)
    response = client.patch(url, {"image_ids": [a.pk, stranger.pk]}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND_IN_REQUEST,
                               "image_ids": [f"ids not in this album {[stranger.pk]}"]}
    response = client.patch(url, {"image_ids": [a.pk, a.pk]}, format="json")
    assert response.json() == {"image_ids": [f"repeated ids {[a.pk]}"]}
    assert entries(album) == [d.pk, b.pk, a.pk, c.pk]


def test_it_takes_a_cover_only_from_the_album(api_as, viewer):
    album = Album.objects.create(name="A", owner=viewer)
    inside, outside = make_image(1, created_by=viewer), make_image(2, created_by=viewer)
    album.add_images([inside])
    client = api_as(viewer)
    response = client.patch(f"/api/albums/{album.pk}/", {"cover": outside.pk}, format="json")
    assert response.status_code == 404 and "cover" in response.json()  # none in the album
    response = client.patch(f"/api/albums/{album.pk}/", {"cover": inside.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["cover_thumbnail_url"].endswith(f"/{inside.pk}/thumbnail/")
    album.remove_images([inside])
    album.refresh_from_db()
    assert album.cover is None


def test_it_lists_albums_with_a_constant_number_of_queries(api_as, editor):
    client = api_as(editor)

    def queries_for_list():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/albums/")
        assert response.status_code == 200
        return len(queries), len(response.json()["results"])

    image = make_image(1)
    Album.objects.create(name="first", owner=editor).add_images([image])
    few = queries_for_list()
    for n in range(8):
        Album.objects.create(name=f"album {n}", owner=editor).add_images([image])
    many = queries_for_list()
    assert (few[1], many[1]) == (1, 9)
    assert few[0] == many[0]
