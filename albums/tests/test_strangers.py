"""Bytes a stranger stored before: an upload, a page upload or a dataset import must look
exactly the same to the uploader whether or not someone they cannot see had those bytes,
and nothing they do (a caption in an import, an automatic caption run) reaches the
stranger's image. The bytes are stored once, shared by each owner's image, and released
when no image names them (albums/ingest.py)."""

import threading
import time

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from albums import tasks
from albums.ingest import atomic_ingest, store_image
from albums.models import Album, Image

from .images import png_bytes, zip_of

THEIRS = png_bytes(color=(9, 99, 199))  # bytes otto stored first
FRESH = png_bytes(color=(11, 111, 211))  # bytes nobody stored


@pytest.fixture
def ottos_image(other_viewer):
    """otto's image of THEIRS, private: a prompt, a caption, in his private album."""
    image, _ = store_image(THEIRS, filename="secret.png", source=Image.Source.GENERATED,
                           created_by=other_viewer, prompt="otto's secret prompt",
                           params={"seed": 1234})
    image.set_caption("otto's caption", by=other_viewer)
    Album.objects.create(name="Otto private", owner=other_viewer).add_images([image])
    return image


@pytest.fixture
def veras_album(viewer):
    return Album.objects.create(name="Vera", owner=viewer)


def upload(name, data):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def answer_shape(item, image):
    """What an upload's answer says about one file, less what differs for any two files."""
    return {key: value for key, value in item.items()
            if key not in ("id", "sha256", "url", "thumbnail_url")}, image.sha256 == item["sha256"]


@pytest.mark.django_db
def test_an_api_upload_gives_the_uploader_their_own_image(api_as, viewer, ottos_image,
                                                          veras_album, media_files):
    client = api_as(viewer)
    files_before = media_files()
    response = client.post("/api/images/", {
        "file": [upload("a.png", THEIRS), upload("b.png", FRESH)], "album": veras_album.pk})
    assert response.status_code == 201
    known, fresh = response.json()
    mine = Image.objects.get(pk=known["id"])
    # The same answer as for bytes nobody had: not a duplicate, a new image of hers.
    assert answer_shape(known, mine) == answer_shape(fresh, Image.objects.get(pk=fresh["id"]))
    assert known["duplicate"] is False and known["id"] != ottos_image.pk
    assert (mine.created_by, mine.prompt, mine.params, mine.caption, mine.source) == (
        viewer, "", {}, "", "upload")
    assert list(veras_album.images.order_by("album_entries__position")) == [
        mine, Image.objects.get(pk=fresh["id"])]
    detail = client.get(f"/api/images/{mine.pk}/").json()
    assert "otto" not in str(detail) and detail["created_by"] == viewer.pk
    assert client.get(f"/api/images/{ottos_image.pk}/").status_code == 404
    # The bytes are stored once: her image names otto's files; only FRESH's are new.
    assert (mine.file.name, mine.thumbnail.name) == (ottos_image.file.name,
                                                     ottos_image.thumbnail.name)
    assert len(media_files()) == len(files_before) + 2
    assert b"".join(client.get(known["url"]).streaming_content) == THEIRS
    # Her own second upload of them is a duplicate: her image again.
    [again] = client.post("/api/images/", {"file": upload("c.png", THEIRS)}).json()
    assert (again["id"], again["duplicate"]) == (mine.pk, True)


@pytest.mark.django_db
def test_a_page_upload_gives_the_uploader_their_own_image(client, viewer, ottos_image,
                                                          veras_album):
    client.force_login(viewer)
    response = client.post(f"/albums/{veras_album.slug}/upload/",
                           {"file": [upload("a.png", THEIRS)]}, follow=True)
    page = response.content.decode()
    assert "Uploaded 1 images to Vera." in page
    assert "already" not in page  # as for bytes nobody had
    [mine] = veras_album.images.all()
    assert mine != ottos_image and mine.created_by == viewer
    assert "otto&#x27;s secret prompt" not in page and "otto's secret prompt" not in page


@pytest.mark.django_db
def test_an_import_gives_the_uploader_their_own_image_and_leaves_the_strangers_caption(
        api_as, viewer, ottos_image, veras_album):
    # Download a visible original, import it with a caption: the caption is the importer's.
    dataset = zip_of([("a.png", THEIRS), ("a.txt", b"poisoned caption")])
    response = api_as(viewer).post(f"/api/albums/{veras_album.pk}/import/",
                                   {"file": [upload("set.zip", dataset)]})
    assert response.status_code == 201
    [item] = response.json()["images"]
    assert item["duplicate"] is False and item["id"] != ottos_image.pk
    mine = Image.objects.get(pk=item["id"])
    assert (mine.created_by, mine.caption) == (viewer, "poisoned caption")
    ottos_image.refresh_from_db()
    assert ottos_image.caption == "otto's caption"
    assert ottos_image.labels.count() == 1
    assert list(veras_album.images.all()) == [mine]


@pytest.mark.django_db
def test_a_caption_run_writes_only_captions_the_starter_may_write(
        settings, tiny_captioner, api_as, viewer, other_viewer, veras_album, make_image):
    # otto's image, public, added to vera's album: her caption run leaves it alone.
    public = Album.objects.create(name="Otto public", owner=other_viewer, visibility="public")
    ottos = make_image(created_by=other_viewer, album=public)
    hers = make_image(created_by=viewer)
    response = api_as(viewer).post(f"/api/albums/{veras_album.pk}/images/",
                                   {"image_ids": [ottos.pk, hers.pk]}, format="json")
    assert response.status_code == 200
    settings.IMAGINEER_CAPTION_MODEL = tiny_captioner
    run = tasks.start_caption_run(veras_album, by=viewer)
    assert run.total == 1

    tasks.caption_album(veras_album.pk, run.pk)

    run.refresh_from_db()
    assert (run.status, run.done, run.total) == ("succeeded", 1, 1)
    assert hers.caption and not ottos.caption
    assert not ottos.labels.exists()


@pytest.mark.django_db
def test_deleting_one_owners_image_keeps_the_files_the_other_still_names(
        api_as, client, editor, viewer, ottos_image, media_files,
        django_capture_on_commit_callbacks):
    mine, created = store_image(THEIRS, filename="a.png", source=Image.Source.UPLOAD,
                                created_by=viewer)
    assert created and mine.file.name == ottos_image.file.name
    shared = sorted([mine.file.name, mine.thumbnail.name])
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(editor).delete(f"/api/images/{mine.pk}/").status_code == 204
    assert set(shared) <= set(media_files())
    client.force_login(ottos_image.created_by)
    response = client.get(f"/media/images/{ottos_image.pk}/thumbnail/")
    assert response.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        ottos_image.delete()
    assert not set(shared) & set(media_files())  # the last image of them: the files go


@pytest.mark.django_db(transaction=True)
def test_it_never_removes_files_that_an_image_being_stored_will_name(viewer, other_viewer,
                                                                     media_files):
    # otto's image is deleted while vera's upload of the same bytes, which adopted the
    # files, has not committed yet: releasing the files must wait for it, then keep them.
    ottos, _ = store_image(THEIRS, filename="a.png", source=Image.Source.UPLOAD,
                           created_by=other_viewer)
    adopted, finish, errors = threading.Event(), threading.Event(), []

    def in_thread(work):
        def run():
            try:
                work()
            except Exception as exc:  # reported by the test below
                errors.append(exc)
            finally:
                connection.close()
        return threading.Thread(target=run)

    def store():
        with atomic_ingest():
            store_image(THEIRS, filename="b.png", source=Image.Source.UPLOAD, created_by=viewer)
            adopted.set()
            finish.wait(10)

    storing = in_thread(store)
    deleting = in_thread(lambda: Image.objects.get(pk=ottos.pk).delete())
    storing.start()
    assert adopted.wait(30)
    deleting.start()
    time.sleep(1)  # the delete commits, and its release waits for the upload's transaction
    finish.set()
    storing.join(30)
    deleting.join(30)
    assert errors == []
    mine = Image.objects.get(created_by=viewer)
    assert not Image.objects.filter(pk=ottos.pk).exists()
    assert {mine.file.name, mine.thumbnail.name} <= set(media_files())
    with default_storage.open(mine.file.name) as f:
        assert f.read() == THEIRS
