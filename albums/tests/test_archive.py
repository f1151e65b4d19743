"""Albums as zip datasets: export, import, and the import limits one can configure.

Hostile zips and images are in test_attack_corpus.py."""

import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from albums.models import Album, Image, Label

from .images import jpeg_bytes, make_image, png_bytes, zip_of

pytestmark = pytest.mark.django_db


def upload(data, name="dataset.zip"):
    return SimpleUploadedFile(name, data, content_type="application/zip")


@pytest.fixture
def album(viewer):
    return Album.objects.create(name="Dataset", owner=viewer)


@pytest.fixture
def import_as(api_as, viewer, album):
    def post(*files, user=viewer, target=album):
        return api_as(user).post(f"/api/albums/{target.pk}/import/", {"file": list(files)})

    return post


def export(client, album):
    response = client.get(f"/api/albums/{album.pk}/export/", HTTP_ACCEPT="application/zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="{album.slug}.zip"'
    return b"".join(response.streaming_content)


def test_it_exports_images_and_same_stem_captions_in_album_order(api_as, viewer, album):
    a, b = make_image(1, created_by=viewer), make_image(2, created_by=viewer)
    a.set_caption("first words")
    album.add_images([b, a])
    archive = zipfile.ZipFile(io.BytesIO(export(api_as(viewer), album)))
    assert archive.namelist() == [
        f"00001-{b.pk}.png", f"00001-{b.pk}.txt",
        f"00002-{a.pk}.png", f"00002-{a.pk}.txt",
        "metadata.jsonl",
    ]
    assert archive.read(f"00002-{a.pk}.png") == default_storage.open(a.file.name).read()
    assert archive.read(f"00002-{a.pk}.txt") == b"first words"
    assert archive.read(f"00001-{b.pk}.txt") == b""
    metadata = [json.loads(line) for line in archive.read("metadata.jsonl").splitlines()]
    assert metadata[1] == {"file_name": f"00002-{a.pk}.png", "text": "first words"}


def test_it_round_trips_an_album_through_export_and_import(
    api_as, viewer, album, media_files, django_capture_on_commit_callbacks
):
    originals = [make_image(1, created_by=viewer), make_image(2, created_by=viewer)]
    originals[0].set_caption("a red square")
    originals[1].set_caption("ünïcode, commas, and\nnew lines")
    album.add_images(originals)
    client = api_as(viewer)
    data = export(client, album)
    expected = [
        (default_storage.open(image.file.name).read(), image.caption) for image in originals
    ]
    with django_capture_on_commit_callbacks(execute=True):
        Image.objects.all().delete()
    assert media_files() == []

    target = Album.objects.create(name="Copy", owner=viewer)
    response = client.post(f"/api/albums/{target.pk}/import/", {"file": upload(data)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["skipped"] == []
    assert [item["duplicate"] for item in body["images"]] == [False, False]
    imported = [Image.objects.get(pk=item["id"]) for item in body["images"]]
    assert [image.pk for image in target.images.order_by("album_entries__position")] == [
        image.pk for image in imported
    ]
    got = [(default_storage.open(image.file.name).read(), image.caption) for image in imported]
    assert got == expected
    for image in imported:
        assert image.source == "import" and image.created_by == viewer
        label = image.labels.get()
        assert (label.source, label.kind) == (Label.Source.IMPORT, Label.Kind.CAPTION)


def test_it_reuses_images_it_already_has_and_adds_only_new_captions(import_as, album, viewer):
    known = make_image(1, created_by=viewer)
    known.set_caption("kept")
    data = default_storage.open(known.file.name).read()
    response = import_as(upload(zip_of([("a.png", data), ("a.txt", "kept\n")])))
    assert response.status_code == 201
    assert response.json()["images"][0] == {**response.json()["images"][0],
                                            "id": known.pk, "duplicate": True}
    assert known.labels.count() == 1
    assert list(album.images.all()) == [known]


def test_it_imports_loose_images_and_captions(import_as, album):
    response = import_as(
        upload(png_bytes(), "red.png"),
        upload(jpeg_bytes(), "green.jpg"),
        upload(b"a green thing", "green.txt"),
    )
    assert response.status_code == 201, response.content
    red, green = (Image.objects.get(pk=item["id"]) for item in response.json()["images"])
    assert (red.caption, green.caption) == ("", "a green thing")
    assert (red.format, green.format) == ("PNG", "JPEG")
    assert album.images.count() == 2


def test_it_reports_files_that_are_neither_images_nor_captions(import_as):
    response = import_as(upload(zip_of([
        ("sub/a.png", png_bytes()), ("sub/a.txt", "in a folder"), ("README.md", "hi"),
        ("__MACOSX/sub/._a.png", "junk"), (".DS_Store", "junk"), ("metadata.jsonl", "{}"),
    ])))
    assert response.status_code == 201
    assert response.json()["skipped"] == ["README.md"]
    image = Image.objects.get(pk=response.json()["images"][0]["id"])
    assert image.caption == "in a folder"


def test_it_refuses_more_entries_than_configured(import_as, settings, stored_state):
    settings.IMAGINEER_IMPORT_MAX_ENTRIES = 3
    before = stored_state()
    entries = [(f"{n}.png", png_bytes((n, n, n))) for n in range(4)]
    response = import_as(upload(zip_of(entries)))
    assert response.status_code == 400
    assert response.json() == {"file": ["dataset.zip: the zip has 4 entries; at most 3"]}
    assert stored_state() == before


def test_it_refuses_more_uncompressed_bytes_than_configured(import_as, settings, stored_state):
    entries = [("a.png", png_bytes()), ("a.txt", b"word " * 10_000)]  # the words compress
    data = zip_of(entries)
    total = sum(len(content) for _, content in entries)
    assert len(data) < total - 1
    settings.IMAGINEER_IMPORT_MAX_BYTES = total - 1
    before = stored_state()
    response = import_as(upload(data))
    assert response.status_code == 400
    assert response.json()["file"][0].endswith(f"holds {total} bytes uncompressed; at most "
                                               f"{total - 1}")
    assert stored_state() == before


def test_it_refuses_an_upload_bigger_than_the_import_limit(import_as, settings, stored_state):
    data = zip_of([("a.png", png_bytes())])
    settings.IMAGINEER_IMPORT_MAX_BYTES = len(data) - 1
    before = stored_state()
    response = import_as(upload(data))
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(f"dataset.zip: the file is {len(data)} bytes")
    assert stored_state() == before


def test_it_lets_only_those_who_curate_the_album_import(import_as, other_viewer, viewer,
                                                        stored_state):
    theirs = Album.objects.create(name="Theirs", owner=other_viewer, visibility="public")
    hidden = Album.objects.create(name="Hidden", owner=other_viewer)
    before = stored_state()
    assert import_as(upload(png_bytes(), "a.png"), target=theirs).status_code == 403
    assert import_as(upload(png_bytes(), "a.png"), target=hidden).status_code == 404
    assert stored_state() == before
