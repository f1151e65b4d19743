import itertools

import pytest


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Users are made by the dozen here; their password hashes need not be strong."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """A fresh MEDIA_ROOT per test, so tests can compare the files they leave."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def media_files(media_root):
    """The files under MEDIA_ROOT now, as sorted relative paths."""

    def files():
        return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())

    return files


@pytest.fixture
def stored_state(media_files):
    """Everything an ingest can leave behind: files, and rows of each albums model."""
    from albums.models import Album, AlbumImage, Image, Label

    def state():
        return {
            "files": media_files(),
            "albums": Album.objects.count(),
            "images": Image.objects.count(),
            "labels": Label.objects.count(),
            "album_images": AlbumImage.objects.count(),
        }

    return state


@pytest.fixture
def make_image(media_root):
    """Store a distinct PNG through albums.ingest (tests/images.py) and return the Image.

    make_image(created_by=user, nsfw=True, caption="a cat", album=album, prompt=...)
    """
    from .images import make_image as store

    numbers = itertools.count(1)

    def make(*, created_by=None, caption="", album=None, **fields):
        image = store(next(numbers), created_by=created_by, **fields)
        if caption:
            image.set_caption(caption, by=created_by)
        if album is not None:
            album.add_images([image], by=created_by)
        return image

    return make


@pytest.fixture(scope="session")
def tiny_captioner(tmp_path_factory):
    """A captioning model with random weights, built once, no download."""
    from albums.captioning import build_tiny_captioning_model

    return str(build_tiny_captioning_model(tmp_path_factory.mktemp("captioner")))
