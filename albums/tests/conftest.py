import io
import itertools

import pytest
from PIL import Image as PILImage


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
    from albums.models import AlbumImage, Image, Label

    def state():
        return {
            "files": media_files(),
            "images": Image.objects.count(),
            "labels": Label.objects.count(),
            "album_images": AlbumImage.objects.count(),
        }

    return state


def png_bytes(n, size=(48, 32)):
    """A real PNG; each n gives other pixels, so other bytes and another sha256."""
    out = io.BytesIO()
    PILImage.new("RGB", size, (n % 256, (n // 256) % 256, 90)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_image(media_root):
    """Store a distinct PNG through albums.ingest, the way images come in, and return it.

    make_image(created_by=user, nsfw=True, caption="a cat", album=album, prompt=...)
    """
    from albums.ingest import store_image
    from albums.models import Image

    numbers = itertools.count(1)

    def make(*, created_by=None, nsfw=False, caption="", album=None, **ingest):
        n = next(numbers)
        ingest.setdefault("source", Image.Source.UPLOAD)
        image, _ = store_image(
            png_bytes(n), filename=f"image-{n}.png", created_by=created_by, **ingest
        )
        if nsfw:
            image.nsfw = True
            image.save(update_fields=["nsfw"])
        if caption:
            image.set_caption(caption, by=created_by)
        if album is not None:
            album.add_images([image], by=created_by)
        return image

    return make
