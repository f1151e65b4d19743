"""/api/images/: the list and its filters, captions, the NSFW flag, deleting."""

import pytest
from django.test import RequestFactory
from django.urls import reverse
from rest_framework import serializers

from albums.api import FileUrls
from albums.models import Album, Image, Label
from core.api import NOT_FOUND_IN_REQUEST, ReadPlan
from imagineer.testing import queries_per_page

from .images import make_image

pytestmark = pytest.mark.django_db


def listed(client, query=""):
    response = client.get(f"/api/images/?{query}")
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def walk(client, url):
    """The ids of every page, following `next`; then back along `previous`, which must
    give the same pages again."""
    pages = []
    while url:
        page = client.get(url).json()
        assert "count" not in page and len(page["results"]) <= 5
        pages.append([item["id"] for item in page["results"]])
        url = page["next"]
    assert [len(ids) for ids in pages] == [5, 5, 2]
    back, url = [], page["previous"]
    while url:
        page = client.get(url).json()
        back.insert(0, [item["id"] for item in page["results"]])
        url = page["previous"]
    assert back == pages[:-1]
    return [image_id for ids in pages for image_id in ids]


def test_it_filters_the_list(api_as, editor, viewer):
    album = Album.objects.create(name="Cats", owner=editor)
    cat = make_image(1, created_by=viewer, prompt="A fluffy CAT on a sofa",
                     source="generated")
    dog = make_image(2, created_by=editor, source="upload", nsfw=True)
    dog.set_caption("a dog in the snow")
    bird = make_image(3, created_by=editor, source="import")
    bird.set_caption("a bird")
    bird.set_caption("")  # the newest caption is empty: not captioned
    album.add_images([dog, cat])
    client = api_as(editor)
    assert listed(client) == [bird.pk, dog.pk, cat.pk]  # newest first
    assert listed(client, f"album={album.pk}") == [dog.pk, cat.pk]  # album order
    assert listed(client, "source=generated") == [cat.pk]
    assert listed(client, "nsfw=true") == [dog.pk]
    assert listed(client, "nsfw=false") == [bird.pk, cat.pk]
    assert listed(client, "has_caption=true") == [dog.pk]
    assert listed(client, "has_caption=false") == [bird.pk, cat.pk]
    assert listed(client, f"created_by={viewer.pk}") == [cat.pk]
    assert listed(client, "search=cat") == [cat.pk]  # prompt, any case
    assert listed(client, "search=snow") == [dog.pk]  # caption
    assert listed(client, "search=bird") == []  # no longer the caption
    assert listed(client, "source=upload&nsfw=true&search=dog") == [dog.pk]


@pytest.mark.parametrize("query, field", [
    ("source=painted", "source"), ("nsfw=maybe", "nsfw"), ("album=x", "album"),
    ("created_by=me", "created_by"), ("has_caption=2", "has_caption"),
    # Each a 500 once: past 64 bits on SQLite, a NUL on PostgreSQL.
    ("created_by=64414288463686606848", "created_by"), ("search=a%00b", "search"),
])
def test_it_names_the_filter_with_a_bad_value(api_as, editor, query, field):
    response = api_as(editor).get(f"/api/images/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_it_answers_404_naming_the_filter_for_an_album_that_does_not_exist(api_as, editor):
    response = api_as(editor).get("/api/images/?album=999")
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND_IN_REQUEST, "album": ["No album with id 999."]}


def test_it_hides_images_of_an_album_the_caller_may_not_see(api_as, viewer, other_viewer):
    hidden = Album.objects.create(name="Hidden", owner=other_viewer)
    mine = make_image(1, created_by=viewer)
    hidden.add_images([mine])
    response = api_as(viewer).get(f"/api/images/?album={hidden.pk}")
    assert response.status_code == 404
    assert response.json() == {"detail": NOT_FOUND_IN_REQUEST,
                               "album": [f"No album with id {hidden.pk}."]}


def test_it_paginates_with_a_constant_number_of_queries(api_as, editor):
    album = Album.objects.create(name="Many", owner=editor)
    images = [make_image(n, created_by=editor) for n in range(12)]
    for image in images:
        image.set_caption(f"caption {image.pk}")
    album.add_images(images)
    client = api_as(editor)
    counts = queries_per_page(client, f"/api/images/?album={album.pk}", (2, 12))
    assert counts[2] == counts[12]
    assert walk(client, "/api/images/?page_size=5") == [image.pk for image in images[::-1]]
    assert walk(client, f"/api/images/?page_size=5&album={album.pk}") == [
        image.pk for image in images]
    first = client.get("/api/images/?page_size=1").json()["results"][0]
    assert first["caption"] == f"caption {images[-1].pk}"


def test_the_list_answers_as_drf_would(api_as, editor, monkeypatch):
    """core.api.ReadPlan reads a page's rows as DRF's Serializer.to_representation does."""
    album = Album.objects.create(name="Many", owner=editor)
    images = [make_image(n, created_by=editor) for n in range(3)]
    images[0].set_caption("a caption")
    album.add_images(images)
    client = api_as(editor)
    urls = ["/api/images/", f"/api/images/?album={album.pk}", f"/api/images/{images[0].pk}/",
            "/api/albums/"]
    answers = [client.get(url).content for url in urls]
    monkeypatch.setattr(ReadPlan, "to_representation", serializers.Serializer.to_representation)
    assert [client.get(url).content for url in urls] == answers


@pytest.mark.parametrize("secure, host", [(False, "testserver"), (True, "example.org:8443")])
def test_file_urls_are_the_reversed_urls(settings, secure, host):
    """FileUrls reverses once per request; each image's URLs are what reversing its id
    gives, absolute for a request, paths without one."""
    settings.ALLOWED_HOSTS = ["testserver", "example.org"]
    request = RequestFactory().get("/api/images/", secure=secure, HTTP_HOST=host)
    urls, paths = FileUrls(request), FileUrls(None)
    for image_id in (1, 7, 10, 987654321987, 2**63 - 1):
        file, thumbnail = (reverse(name, args=[image_id])
                           for name in ("image_file", "image_thumbnail"))
        assert urls(image_id) == (request.build_absolute_uri(file),
                                  request.build_absolute_uri(thumbnail))
        assert paths(image_id) == (file, thumbnail)


def test_it_sets_the_caption_as_a_new_manual_label(api_as, editor):
    image = make_image(1)
    image.set_caption("old words", source=Label.Source.AUTO)
    response = api_as(editor).patch(f"/api/images/{image.pk}/",
                                    {"caption": "  a red square  "}, format="json")
    assert response.status_code == 200
    assert response.json()["caption"] == "a red square"
    assert Image.objects.get(pk=image.pk).caption == "a red square"
    newest = image.labels.first()
    assert (newest.text, newest.kind, newest.source, newest.created_by) == (
        "a red square", "caption", "manual", editor)
    assert image.labels.count() == 2  # the older caption stays as history


def test_it_sets_and_clears_the_nsfw_flag(api_as, editor):
    image = make_image(1)
    client = api_as(editor)
    assert client.patch(f"/api/images/{image.pk}/", {"nsfw": True}, format="json").json()[
        "nsfw"] is True
    image.refresh_from_db()
    assert image.nsfw
    client.patch(f"/api/images/{image.pk}/", {"nsfw": False}, format="json")
    image.refresh_from_db()
    assert not image.nsfw
    assert image.labels.count() == 0


def test_it_refuses_a_caption_that_is_too_long(api_as, editor):
    image = make_image(1)
    response = api_as(editor).patch(f"/api/images/{image.pk}/", {"caption": "x" * 10_001},
                                    format="json")
    assert response.status_code == 400
    assert "caption" in response.json()
    assert image.labels.count() == 0


def test_it_ignores_read_only_fields(api_as, editor):
    image = make_image(1)
    response = api_as(editor).patch(f"/api/images/{image.pk}/",
                                    {"sha256": "0" * 64, "width": 1}, format="json")
    assert response.status_code == 200
    image.refresh_from_db()
    assert image.width == 64 and image.sha256 != "0" * 64


def test_it_deletes_the_row_and_both_files(api_as, editor, media_files,
                                           django_capture_on_commit_callbacks):
    keep = make_image(1)
    gone = make_image(2)
    album = Album.objects.create(name="A", owner=editor, cover=gone)
    album.add_images([gone, keep])
    assert len(media_files()) == 4
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(editor).delete(f"/api/images/{gone.pk}/")
    assert response.status_code == 204
    assert not Image.objects.filter(pk=gone.pk).exists()
    assert media_files() == sorted([keep.file.name, keep.thumbnail.name])
    album.refresh_from_db()
    assert album.cover is None
    assert list(album.images.all()) == [keep]


def test_it_removes_files_for_queryset_deletes_too(media_files,
                                                   django_capture_on_commit_callbacks):
    for n in range(3):
        make_image(n)
    with django_capture_on_commit_callbacks(execute=True):
        Image.objects.all().delete()
    assert media_files() == []
