"""Serving originals and thumbnails: by id, to those who may see them, or via the proxy."""

import pytest
from django.core.files.storage import default_storage
from rest_framework.authtoken.models import Token

from albums.models import Album

from .images import image_bytes, make_image

pytestmark = pytest.mark.django_db


def body(response):
    return b"".join(response.streaming_content)


def test_it_streams_the_original_and_the_thumbnail(client, viewer):
    image = make_image(1, created_by=viewer)
    client.force_login(viewer)
    response = client.get(f"/media/images/{image.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'inline; filename="{image.pk}.png"'
    assert "private" in response["Cache-Control"]
    assert body(response) == default_storage.open(image.file.name).read()
    response = client.get(f"/media/images/{image.pk}/thumbnail/")
    assert response["Content-Type"] == "image/webp"
    assert body(response)[8:12] == b"WEBP"


def test_it_serves_jpeg_with_its_type(client, editor):
    from albums.ingest import store_image

    image, _ = store_image(image_bytes("JPEG"), filename="a.jpg", source="upload")
    client.force_login(editor)
    assert client.get(f"/media/images/{image.pk}/")["Content-Type"] == "image/jpeg"


def test_it_accepts_an_api_token(client, viewer, other_viewer):
    image = make_image(1, created_by=viewer)
    token = Token.objects.create(user=viewer)
    response = client.get(f"/media/images/{image.pk}/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    other = Token.objects.create(user=other_viewer)
    response = client.get(f"/media/images/{image.pk}/", HTTP_AUTHORIZATION=f"Token {other.key}")
    assert response.status_code == 404
    response = client.get(f"/media/images/{image.pk}/", HTTP_AUTHORIZATION="Token wrong")
    assert response.status_code == 404


def test_it_hides_images_from_anonymous_visitors_unless_the_gallery_is_public(
    client, viewer, settings
):
    album = Album.objects.create(name="Open", owner=viewer, visibility="public")
    shown, hidden = make_image(1, created_by=viewer), make_image(2, created_by=viewer)
    album.add_images([shown])
    assert client.get(f"/media/images/{shown.pk}/").status_code == 404
    settings.IMAGINEER_PUBLIC_GALLERY = True
    assert client.get(f"/media/images/{shown.pk}/").status_code == 200
    assert client.get(f"/media/images/{hidden.pk}/thumbnail/").status_code == 404


def test_it_answers_404_for_unknown_ids_and_missing_files(client, editor):
    client.force_login(editor)
    assert client.get("/media/images/999/").status_code == 404
    image = make_image(1)
    default_storage.delete(image.file.name)
    assert client.get(f"/media/images/{image.pk}/").status_code == 404


def test_it_hands_the_file_to_nginx_with_x_accel_redirect(client, viewer, settings):
    settings.IMAGINEER_SENDFILE = "nginx"
    image = make_image(1, created_by=viewer)
    client.force_login(viewer)
    response = client.get(f"/media/images/{image.pk}/")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{image.file.name}"
    assert response["Content-Type"] == "image/png"
    assert response.content == b""
    thumbnail = client.get(f"/media/images/{image.pk}/thumbnail/")
    assert thumbnail["X-Accel-Redirect"] == f"/protected-media/{image.thumbnail.name}"
    client.logout()
    assert "X-Accel-Redirect" not in client.get(f"/media/images/{image.pk}/")


def test_it_hands_the_file_to_apache_with_x_sendfile(client, viewer, settings):
    settings.IMAGINEER_SENDFILE = "apache"
    image = make_image(1, created_by=viewer)
    client.force_login(viewer)
    response = client.get(f"/media/images/{image.pk}/")
    assert response["X-Sendfile"] == str(settings.MEDIA_ROOT / image.file.name)


def test_it_allows_only_get_and_head(client, viewer):
    image = make_image(1, created_by=viewer)
    client.force_login(viewer)
    assert client.head(f"/media/images/{image.pk}/").status_code == 200
    assert client.post(f"/media/images/{image.pk}/").status_code == 405
