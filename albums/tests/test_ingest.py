"""store_image: what it accepts, its limits, and that a failure leaves nothing.

Hostile files, sent through every input path, are in test_attack_corpus.py."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from albums.ingest import ImageRejected, atomic_ingest, store_image
from albums.models import Image

from .images import image_bytes, jpeg_bytes, png_bytes

pytestmark = pytest.mark.django_db


def test_it_stores_the_original_bytes_and_a_webp_thumbnail(viewer):
    data = png_bytes(size=(1000, 500))
    image, created = store_image(
        data, filename="wide.png", source=Image.Source.GENERATED, created_by=viewer,
        prompt="a red wall", params={"seed": 1},
    )
    assert created
    assert (image.width, image.height, image.format, image.size_bytes) == (1000, 500, "PNG",
                                                                          len(data))
    assert image.file.name == f"images/{image.sha256[:2]}/{image.sha256}.png"
    assert image.thumbnail.name == f"thumbnails/{image.sha256[:2]}/{image.sha256}.webp"
    with default_storage.open(image.file.name) as f:
        assert f.read() == data
    with default_storage.open(image.thumbnail.name) as f:
        thumb = PILImage.open(io.BytesIO(f.read()))
        assert (thumb.format, thumb.size) == ("WEBP", (384, 192))
    assert (image.prompt, image.params, image.created_by) == ("a red wall", {"seed": 1}, viewer)


@pytest.mark.parametrize("format, extension", [("JPEG", "jpg"), ("WEBP", "webp")])
def test_it_accepts_jpeg_and_webp(format, extension):
    image, _ = store_image(image_bytes(format), filename=f"x.{extension}",
                           source=Image.Source.UPLOAD)
    assert image.format == format
    assert image.file.name.endswith(f".{extension}")


def test_it_keeps_png_text_chunks_exactly():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Seed: 7")
    out = io.BytesIO()
    PILImage.new("RGB", (32, 32), "blue").save(out, "PNG", pnginfo=info)
    image, _ = store_image(out.getvalue(), filename="gen.png", source=Image.Source.GENERATED)
    with default_storage.open(image.file.name) as f:
        assert PILImage.open(f).text["parameters"] == "a cat\nSteps: 20, Seed: 7"


def test_it_returns_the_existing_image_for_the_same_bytes(stored_state):
    first, created = store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD)
    before = stored_state()
    second, created_again = store_image(png_bytes(), filename="b.png",
                                        source=Image.Source.IMPORT)
    assert created and not created_again
    assert second.pk == first.pk
    assert second.source == Image.Source.UPLOAD
    assert stored_state() == before


def test_it_refuses_files_over_the_byte_limit(settings, stored_state):
    data = png_bytes()
    settings.IMAGINEER_MAX_UPLOAD_BYTES = len(data) - 1
    before = stored_state()
    with pytest.raises(ImageRejected, match=f"big.png: the file is {len(data)} bytes"):
        store_image(data, filename="big.png", source=Image.Source.UPLOAD)
    assert stored_state() == before


def test_it_refuses_images_over_the_pixel_limit_from_the_header(settings):
    settings.IMAGINEER_MAX_IMAGE_PIXELS = 64 * 48 - 1
    with pytest.raises(ImageRejected, match="64x48 = 3072 pixels"):
        store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD)


def test_it_removes_the_files_when_the_transaction_around_it_fails(stored_state):
    before = stored_state()
    with pytest.raises(RuntimeError), atomic_ingest():
        store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD)
        store_image(jpeg_bytes(), filename="b.jpg", source=Image.Source.UPLOAD)
        assert len(stored_state()["files"]) == 4
        raise RuntimeError("something after the images failed")
    assert stored_state() == before


def test_it_removes_the_files_when_the_row_cannot_be_written(stored_state, monkeypatch):
    before = stored_state()

    def fail(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(Image.objects, "create", fail)
    with pytest.raises(RuntimeError):
        store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD)
    assert stored_state() == before


def miss_the_first_lookup(monkeypatch):
    """As if another request committed the same bytes just after our dedup check."""
    from albums.models import ImageQuerySet

    real_filter = ImageQuerySet.filter
    missed = []

    def first_lookup_misses(self, *args, **kwargs):
        if "sha256" in kwargs and not missed:
            missed.append(True)
            return real_filter(self, *args, **kwargs).none()
        return real_filter(self, *args, **kwargs)

    monkeypatch.setattr(ImageQuerySet, "filter", first_lookup_misses)
    return missed


def test_it_returns_the_winner_when_the_same_bytes_are_stored_at_once(stored_state,
                                                                      monkeypatch, viewer):
    # Two requests of one uploader (another uploader gets an image of their own).
    first, _ = store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD,
                           created_by=viewer)
    before = stored_state()
    missed = miss_the_first_lookup(monkeypatch)
    second, created = store_image(png_bytes(), filename="b.png", source=Image.Source.UPLOAD,
                                  created_by=viewer)
    assert missed and not created
    assert second.pk == first.pk
    assert stored_state() == before


def saved(image, format, **options):
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def test_it_accepts_every_legal_layout_of_the_formats_it_reads():
    """The end-of-image check walks each file's structure: it must not refuse real files
    whose structure is unusual (scans, restart markers, frames, odd sizes)."""
    noise = PILImage.effect_noise((120, 80), 60).convert("RGB")
    turned = noise.rotate(180)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # orientation: turned
    files = {
        "progressive.jpg": saved(noise, "JPEG", progressive=True),
        "restarts.jpg": saved(noise, "JPEG", restart_marker_blocks=2),
        "cmyk.jpg": saved(noise.convert("CMYK"), "JPEG"),
        "exif.jpg": saved(noise, "JPEG", exif=exif),
        "camera.mpo": saved(noise, "MPO", save_all=True, append_images=[turned]),
        "16-bit.png": saved(PILImage.new("I;16", (30, 30)), "PNG"),
        "animated.png": saved(noise, "PNG", save_all=True, append_images=[turned]),
        "animated.webp": saved(noise, "WEBP", save_all=True, append_images=[turned]),
        "lossless.webp": saved(noise, "WEBP", lossless=True),
        "odd.webp": saved(PILImage.new("RGB", (3, 3)), "WEBP"),
    }
    for name, data in files.items():
        image, created = store_image(data, filename=name, source=Image.Source.UPLOAD)
        assert created and image.size_bytes == len(data), name


def test_it_keeps_the_winners_files_when_the_loser_wrote_the_same_names(settings, stored_state,
                                                                        monkeypatch, viewer):
    # S3 cannot refuse a taken name: two ingests of the same bytes at once write the very
    # same objects, and the loser, cleaning up, must not remove the winner's files.
    from django.core.files.storage import FileSystemStorage

    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"allow_overwrite": True},
    }}
    first, _ = store_image(png_bytes(), filename="a.png", source=Image.Source.UPLOAD,
                           created_by=viewer)
    before = stored_state()
    missed = miss_the_first_lookup(monkeypatch)
    # Our exists() check came before the winner's write landed.
    monkeypatch.setattr(FileSystemStorage, "exists", lambda self, name: False)
    second, created = store_image(png_bytes(), filename="b.png", source=Image.Source.UPLOAD,
                                  created_by=viewer)
    assert missed and not created and second.pk == first.pk
    assert stored_state() == before


def test_it_stores_a_generated_image_whatever_the_upload_limit(settings, viewer):
    # Generated PNGs are the platform's own bytes: an operator who lowers the upload limit
    # must not make finished GPU work fail.
    from albums.ingest import store_generated

    settings.IMAGINEER_MAX_UPLOAD_BYTES = 10
    picture = PILImage.new("RGB", (600, 300), (200, 30, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = buffer.getvalue()
    with pytest.raises(ImageRejected, match="at most 10 bytes"):
        store_image(data, filename="upload.png", source=Image.Source.UPLOAD)
    image, created = store_generated(data, picture, filename="job-1-0.png", created_by=viewer,
                                     prompt="a red wall", params={"seed": 1})
    assert created
    assert (image.source, image.width, image.height, image.format, image.size_bytes) == (
        "generated", 600, 300, "PNG", len(data))
    with default_storage.open(image.thumbnail.name) as f:
        assert PILImage.open(io.BytesIO(f.read())).size == (384, 192)
