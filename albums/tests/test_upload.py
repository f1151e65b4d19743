"""POST /api/images/: uploads, dedup, and bad files refused with nothing left behind
(hostile files, through this and every other input path: test_attack_corpus.py).

The rule when several files come at once: every file is checked first, and if any is
bad the whole request is refused (400 naming each bad file) and nothing is stored.
"""

from django.core.files.uploadedfile import SimpleUploadedFile

from albums.models import Album, Image
from core.api import NOT_FOUND_IN_REQUEST

from .images import jpeg_bytes, png_bytes, png_declaring


def upload(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_it_uploads_images_and_answers_with_their_urls(api_as, viewer, stored_state):
    client = api_as(viewer)
    response = client.post(
        "/api/images/",
        {"file": [upload("a.png", png_bytes()), upload("b.jpg", jpeg_bytes(size=(90, 60)))]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    first, second = response.json()
    assert set(first) == {"id", "width", "height", "sha256", "url", "thumbnail_url",
                          "duplicate"}
    assert (first["width"], first["height"], first["duplicate"]) == (64, 48, False)
    assert (second["width"], second["height"]) == (90, 60)
    assert first["url"] == f"http://testserver/media/images/{first['id']}/"
    assert first["thumbnail_url"] == f"http://testserver/media/images/{first['id']}/thumbnail/"
    image = Image.objects.get(pk=first["id"])
    assert (image.source, image.created_by, image.sha256) == ("upload", viewer, first["sha256"])
    assert len(stored_state()["files"]) == 4
    assert client.get(first["url"]).status_code == 200


def test_it_refuses_a_form_field_it_does_not_know_and_stores_nothing(api_as, viewer,
                                                                    stored_state):
    album = Album.objects.create(name="A", owner=viewer)
    client = api_as(viewer)
    for url in ("/api/images/", f"/api/albums/{album.pk}/import/"):
        response = client.post(url, {"file": [upload("a.png", png_bytes())], "albm": "1"},
                               format="multipart")
        assert response.status_code == 400, url
        assert list(response.json()) == ["albm"]
        assert response.json()["albm"][0].startswith("Unknown field. Allowed: ")
    assert not Image.objects.exists() and not stored_state()["files"]


def test_it_flags_a_second_upload_of_the_same_bytes_as_a_duplicate(api_as, viewer,
                                                                    stored_state):
    client = api_as(viewer)
    first = client.post("/api/images/", {"file": upload("a.png", png_bytes())}).json()[0]
    before = stored_state()
    response = client.post("/api/images/", {"file": upload("again.png", png_bytes())})
    assert response.status_code == 201
    [again] = response.json()
    assert again["duplicate"] is True
    assert again["id"] == first["id"]
    assert stored_state() == before


def test_it_refuses_a_file_over_the_byte_limit(api_as, viewer, settings, stored_state):
    settings.IMAGINEER_MAX_UPLOAD_BYTES = 100
    before = stored_state()
    response = api_as(viewer).post("/api/images/", {"file": upload("big.png", png_bytes())})
    assert response.status_code == 400
    assert "big.png: the file is" in response.json()["file"][0]
    assert "at most 100 bytes" in response.json()["file"][0]
    assert stored_state() == before


def test_it_refuses_the_whole_request_when_one_file_of_several_is_bad(
    api_as, viewer, stored_state
):
    album = Album.objects.create(name="Mine", owner=viewer)
    before = stored_state()
    response = api_as(viewer).post(
        "/api/images/",
        {
            "file": [
                upload("good.png", png_bytes()),
                upload("bomb.png", png_declaring(31_623, 31_623)),
                upload("good.jpg", jpeg_bytes()),
                upload("empty.png", b""),
            ],
            "album": album.pk,
        },
    )
    assert response.status_code == 400
    errors = response.json()["file"]
    assert [e.split(":")[0] for e in errors] == ["bomb.png", "empty.png"]
    assert stored_state() == before


def test_it_adds_uploads_to_an_album_in_order(api_as, viewer):
    album = Album.objects.create(name="Mine", owner=viewer)
    response = api_as(viewer).post(
        "/api/images/",
        {"file": [upload("a.png", png_bytes()), upload("b.jpg", jpeg_bytes())],
         "album": album.pk},
    )
    assert response.status_code == 201
    ids = [item["id"] for item in response.json()]
    assert list(album.entries.values_list("image_id", "position")) == [(ids[0], 0), (ids[1], 1)]


def test_it_refuses_an_album_the_uploader_may_not_change(api_as, viewer, other_viewer,
                                                         stored_state):
    public = Album.objects.create(name="Theirs", owner=other_viewer, visibility="public")
    private = Album.objects.create(name="Hidden", owner=other_viewer)
    before = stored_state()
    for album in (public, private):
        response = api_as(viewer).post(
            "/api/images/", {"file": upload("a.png", png_bytes()), "album": album.pk}
        )
        assert response.status_code == 404
        assert response.json() == {
            "detail": NOT_FOUND_IN_REQUEST,
            "album": [f"No album with id {album.pk} that you may add to."],
        }
    assert stored_state() == before


def test_it_asks_for_a_file(api_as, viewer):
    response = api_as(viewer).post("/api/images/", {})
    assert response.status_code == 400
    assert "file" in response.json()


def test_it_refuses_uploads_from_anonymous_visitors(api_client, db, settings, stored_state):
    settings.IMAGINEER_PUBLIC_GALLERY = True
    before = stored_state()
    response = api_client.post("/api/images/", {"file": upload("a.png", png_bytes())})
    assert response.status_code in (401, 403)
    assert stored_state() == before
