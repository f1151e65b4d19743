"""Taking image bytes in: the one way an Image is made (uploads, imports, generation).

    image, created = store_image(data, filename="cat.png", source=Image.Source.UPLOAD,
                                 created_by=user)

`inspect_image` checks the bytes without storing anything: PNG, JPEG or WebP only,
within IMAGINEER_MAX_UPLOAD_BYTES and IMAGINEER_MAX_IMAGE_PIXELS (read from the header,
so a decompression bomb is never decoded), and decodable to the last byte. It raises
ImageRejected naming the file and the rule.

`store_image` dedups by sha256 (the same bytes return the existing image), then writes
the original, exactly as given, and a WebP thumbnail through default_storage under names
made from the hash, and creates the row. If anything fails, what it wrote is removed.

To store several images as one unit, all or none, wrap the calls in `atomic_ingest()`:
a transaction that also removes the files written inside it when it fails.
"""

import contextvars
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from PIL import Image as PILImage
from PIL import ImageOps

from .models import Image

THUMBNAIL_SIZE = 384
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class ImageRejected(ValueError):
    """Bytes that are not an image we store. The message names the file and the rule."""

    def __init__(self, filename, reason):
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


@dataclass(frozen=True)
class CheckedImage:
    """Bytes that passed inspect_image, with what it learned about them."""

    data: bytes
    filename: str
    sha256: str
    width: int
    height: int
    format: str
    thumbnail: bytes

    @property
    def extension(self):
        return EXTENSIONS[self.format]


def inspect_image(data, filename):
    """Check `data` is an image we accept and make its thumbnail; raise ImageRejected."""
    check_file_size(len(data), filename)
    open_checked(data, filename)
    try:
        PILImage.open(io.BytesIO(data)).verify()  # PNG: every chunk's checksum
        image = PILImage.open(io.BytesIO(data))
        image.load()  # decodes every pixel: a truncated or corrupt file fails here
        thumbnail = make_thumbnail(image)
    except (OSError, SyntaxError, ValueError, EOFError, PILImage.DecompressionBombError) as exc:
        raise ImageRejected(filename, f"the image is truncated or corrupt ({exc})") from exc
    return CheckedImage(
        data=data,
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        format="JPEG" if image.format == "MPO" else image.format,  # MPO: a camera's JPEG
        thumbnail=thumbnail,
    )


def check_file_size(size, filename):
    """Refuse empty files and files over IMAGINEER_MAX_UPLOAD_BYTES (before reading them)."""
    max_bytes = settings.IMAGINEER_MAX_UPLOAD_BYTES
    if size == 0:
        raise ImageRejected(filename, "the file is empty")
    if size > max_bytes:
        raise ImageRejected(
            filename, f"the file is {size} bytes; at most {max_bytes} bytes are accepted"
        )


def open_checked(data, filename):
    """Open the image lazily (the header only) and check its format and pixel count."""
    max_pixels = settings.IMAGINEER_MAX_IMAGE_PIXELS
    try:
        image = PILImage.open(io.BytesIO(data), formats=list(EXTENSIONS))
    except PILImage.DecompressionBombError as exc:  # Pillow's own, larger limit
        raise ImageRejected(
            filename, f"the image is a decompression bomb; at most {max_pixels} pixels are accepted"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(filename, "not a PNG, JPEG or WebP image") from exc
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageRejected(
            filename,
            f"the image is {image.width}x{image.height} = {pixels} pixels; "
            f"at most {max_pixels} pixels are accepted",
        )
    return image


def make_thumbnail(image):
    """WebP bytes, THUMBNAIL_SIZE px on the long side, upright per the EXIF orientation."""
    thumb = ImageOps.exif_transpose(image)
    has_alpha = thumb.mode in ("RGBA", "LA", "PA") or "transparency" in thumb.info
    if thumb.mode.startswith("I;16") or thumb.mode in ("I", "F"):
        thumb = thumb.point(lambda value: value / 256).convert("L")
    thumb = thumb.convert("RGBA" if has_alpha else "RGB")
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


# Names of the files written inside the innermost atomic_ingest(), to remove on failure.
_written = contextvars.ContextVar("albums_ingest_written", default=None)


@contextmanager
def atomic_ingest():
    """A transaction for storing images: when it fails, the files written in it go too."""
    outer = _written.get()
    names = []
    token = _written.set(names)
    try:
        with transaction.atomic():
            yield
    except BaseException:
        delete_files(names)
        raise
    finally:
        _written.reset(token)
    if outer is not None:  # an enclosing atomic_ingest may still fail: hand the names up
        outer.extend(names)


def delete_files(names):
    """Remove the files of a failed ingest, except those a stored image names: on S3 a
    write cannot refuse a taken name, so a concurrent ingest of the same bytes may have
    written the very same name, and committed its image."""
    try:
        named = Image.objects.filter(Q(file__in=names) | Q(thumbnail__in=names))
        kept = {name for pair in named.values_list("file", "thumbnail") for name in pair}
    except DatabaseError:  # the database is gone: leave files without rows to check_media
        return
    for name in names:
        if name not in kept:
            default_storage.delete(name)


def store_image(data, *, filename, source, created_by=None, prompt="", params=None,
                nsfw=False):
    """Store image bytes (see the module docstring). Returns (image, created)."""
    checked = inspect_image(data, filename)
    existing = Image.objects.filter(sha256=checked.sha256).first()
    if existing is not None:
        return existing, False
    prefix = f"{checked.sha256[:2]}/{checked.sha256}"
    try:
        with atomic_ingest():
            image = Image.objects.create(
                file=save_file(f"images/{prefix}.{checked.extension}", checked.data),
                thumbnail=save_file(f"thumbnails/{prefix}.webp", checked.thumbnail),
                width=checked.width,
                height=checked.height,
                size_bytes=len(checked.data),
                format=checked.format,
                sha256=checked.sha256,
                source=source,
                prompt=prompt,
                params=params or {},
                nsfw=nsfw,
                created_by=created_by,
            )
    except IntegrityError:
        # The same bytes were stored at the same moment by another request; atomic_ingest
        # has removed our copy of the files.
        existing = Image.objects.filter(sha256=checked.sha256).first()
        if existing is None:
            raise
        return existing, False
    return image, True


def read_upload(upload):
    """All the bytes of an uploaded file, from the start (it may be read more than once)."""
    upload.seek(0)
    return upload.read()


def save_file(name, data):
    """Write through default_storage. Names are made from the content's sha256, so a file
    already there holds these very bytes (left by a process killed before its row was
    committed, or being stored by a concurrent request): it is adopted as it is, never
    renamed or removed by us."""
    if default_storage.exists(name):
        return name
    saved = default_storage.save(name, ContentFile(data))
    names = _written.get()
    if names is not None:
        names.append(saved)
    return saved
