"""Taking image bytes in: the one way an Image is made (uploads, imports, generation).

    image, created = store_image(data, filename="cat.png", source=Image.Source.UPLOAD,
                                 created_by=user)

`inspect_image` checks the bytes without storing anything: PNG, JPEG or WebP only,
within IMAGINEER_MAX_UPLOAD_BYTES and IMAGINEER_MAX_IMAGE_PIXELS (read from the header,
so a decompression bomb is never decoded), whole and with nothing after the image's end
(a polyglot: an image with a zip, HTML or script appended), and decodable to the last
byte. It raises ImageRejected naming the file and the rule.

Pictures made elsewhere (uploads, imports) keep how they were made: the generation
metadata that Automatic1111, ComfyUI, InvokeAI, Fooocus and NovelAI write is read into
the image's prompt and params (albums/metadata.py), so the image page shows it and a
remix starts from it.

`store_generated` stores the PNG bytes of a generated image without those checks (they
are the platform's own, not an upload), through store_image.

`store_image` gives the uploader their own image, always. Bytes they stored before return
that image of theirs (`created` False); otherwise a new row of theirs is made, even when
somebody else stored the very same bytes: an upload must look exactly the same to the
uploader whether or not a stranger had those bytes (DESIGN.md, "Every account is a
stranger"). Returning the stranger's image would hand over its prompt, parameters, caption
and creator, and let the uploader's captions overwrite theirs.

The bytes are stored once all the same. The original, exactly as given, and a WebP
thumbnail go through default_storage under names made from the sha256, and every row of
those bytes, whoever owns it, names the same two files. So the files are reference-counted:
`release_files` removes them only when no row names them any more (an image deleted, an
ingest failed). Storing and releasing the same bytes take `lock_content(sha256)` until
their transaction ends, so a file is never removed while a new row is about to name it.
Readers need nothing of this: serving, thumbnails, export, training and check_media read
`image.file.name` as before, with S3 or the local disk alike.

To store several images as one unit, all or none, wrap the calls in `atomic_ingest()`:
a transaction that also removes the files written inside it when it fails.

Uploads and imports are limited per user (accounts/limits.py): `store_uploads` and the
import count the request against its throttle scope before reading anything, and
`reserve_storage` refuses, inside the storing transaction and before any file is written,
images that would take the uploader past their storage quota (413).
"""

import contextvars
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.transaction import TransactionManagementError
from PIL import Image as PILImage
from PIL import ImageOps

from accounts.limits import check_storage, lock_user, throttle

from .metadata import read_generation_metadata
from .models import Image

THUMBNAIL_SIZE = 384
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    format = open_checked(data, filename).format
    check_image_end(data, format, filename)
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
        if has_our_signature(data):  # cut short before the end of its header
            raise ImageRejected(filename, "the image is truncated or corrupt") from exc
        raise ImageRejected(filename, "not a PNG, JPEG or WebP image") from exc
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageRejected(
            filename,
            f"the image is {image.width}x{image.height} = {pixels} pixels; "
            f"at most {max_pixels} pixels are accepted",
        )
    return image


def has_our_signature(data):
    """Whether the bytes begin as a PNG, a JPEG or a WebP (a RIFF container of WEBP) does."""
    return (
        data.startswith((PNG_SIGNATURE, b"\xff\xd8\xff"))
        or (data.startswith(b"RIFF") and data[8:12] == b"WEBP")
    )


def check_image_end(data, format, filename):
    """Refuse bytes that stop before the image's last marker or go on after it.

    Data after the end is never part of the picture: it is how polyglots are made (an
    image that is also a zip, an HTML page or a script). We keep originals byte for byte,
    so such a file is refused rather than silently cut or re-encoded.
    """
    end = image_end(data, format)
    if end is None or end > len(data):
        raise ImageRejected(filename, "the image is truncated or corrupt (it has no end marker)")
    if end < len(data):
        raise ImageRejected(
            filename,
            f"{len(data) - end} bytes follow the end of the image (a file hidden in it?); "
            "save it again as a plain image",
        )


def image_end(data, format):
    """The offset where the image's own structure ends, or None if it never ends."""
    if format == "PNG":
        return png_end(data)
    if format == "WEBP":  # a RIFF container: its size is in its header, padded to even
        size = int.from_bytes(data[4:8], "little")
        return 8 + size + (size & 1)
    end = jpeg_end(data, 0)
    # MPO (a camera's JPEG with a preview or a second view): whole JPEGs, one after another.
    while format == "MPO" and end is not None and data.startswith(b"\xff\xd8", end):
        end = jpeg_end(data, end)
    return end


def png_end(data):
    """After the IEND chunk: walk the chunks (length, type, data, CRC) from the signature."""
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position
    return None


def jpeg_end(data, position):
    """After the EOI marker of the JPEG that starts at `position`: walk its segments, and
    skip each scan's entropy-coded data (where 0xFF is followed by 0x00 or a restart)."""
    if not data.startswith(b"\xff\xd8", position):
        return None
    position += 2
    while position < len(data) and data[position] == 0xFF:
        while position < len(data) and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= len(data):
            return None
        marker = data[position]
        position += 1
        if marker == 0xD9:  # EOI
            return position
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length, no payload
            continue
        position += int.from_bytes(data[position:position + 2], "big")
        if marker == 0xDA:  # start of scan
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= len(data):
                    return None
                following = data[position + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    position += 2
                elif following == 0xFF:
                    position += 1
                else:
                    break
    return None


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


# (sha256, name) of the files written inside the innermost atomic_ingest(), to release on
# failure.
_written = contextvars.ContextVar("albums_ingest_written", default=None)


@contextmanager
def atomic_ingest():
    """A transaction for storing images: when it fails, the files written in it go too."""
    outer = _written.get()
    written = []
    token = _written.set(written)
    try:
        with transaction.atomic():
            yield
    except BaseException:
        for sha256, name in written:
            release_files(sha256, [name])
        raise
    finally:
        _written.reset(token)
    if outer is not None:  # an enclosing atomic_ingest may still fail: hand the names up
        outer.extend(written)


def lock_content(sha256):
    """Hold the lock on the files of these bytes until the transaction ends, so that
    storing them and releasing them never interleave: a file no committed row names may be
    about to be named by a row not yet committed. On PostgreSQL an advisory lock keyed by
    the hash; SQLite needs none, its IMMEDIATE transactions hold the one write lock from
    their start (settings.py)."""
    if not connection.in_atomic_block:
        raise TransactionManagementError("lock_content holds its lock until the transaction "
                                         "ends: call it inside one")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sha256[:15], 16)])


def release_files(sha256, names):
    """Remove those of `names` (files of the bytes `sha256`) that no image names any more:
    every owner's image of the same bytes names the same files."""
    try:
        with transaction.atomic():
            lock_content(sha256)
            named = Image.objects.filter(sha256=sha256).values_list("file", "thumbnail")
            kept = {name for pair in named for name in pair}
            for name in names:
                if name not in kept:
                    default_storage.delete(name)
    except DatabaseError:  # the database is gone: leave files without rows to check_media
        return


def own_image(owner, sha256):
    """The owner's image of these bytes, or None. Nobody else's: see the module docstring."""
    return Image.objects.filter(created_by=owner, sha256=sha256).first()


def store_image(data, *, filename, source, created_by=None, prompt="", params=None,
                nsfw=False, checked=None):
    """Store image bytes as `created_by`'s image (see the module docstring). Returns
    (image, created): created is False when they had stored these bytes before.

    `checked`: what inspect_image would learn, when the bytes are the platform's own
    (store_generated); else the bytes are inspected as untrusted input."""
    checked = checked or inspect_image(data, filename)
    existing = own_image(created_by, checked.sha256)
    if existing is not None:
        return existing, False
    if source != Image.Source.GENERATED and not prompt and not params:
        prompt, params = read_generation_metadata(checked.data, width=checked.width,
                                                  height=checked.height)
    prefix = f"{checked.sha256[:2]}/{checked.sha256}"
    try:
        with atomic_ingest():
            lock_content(checked.sha256)
            image = Image.objects.create(
                file=save_file(f"images/{prefix}.{checked.extension}", checked.data,
                               checked.sha256),
                thumbnail=save_file(f"thumbnails/{prefix}.webp", checked.thumbnail,
                                    checked.sha256),
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
        # The same owner stored the same bytes at the same moment in another request;
        # atomic_ingest has released what we wrote.
        existing = own_image(created_by, checked.sha256)
        if existing is None:
            raise
        return existing, False
    return image, True


def read_upload(upload):
    """All the bytes of an uploaded file, from the start (it may be read more than once)."""
    upload.seek(0)
    return upload.read()


def save_file(name, data, sha256):
    """Write through default_storage, under lock_content(sha256). Names are made from the
    content's sha256, so a file already there holds these very bytes (another owner's
    image of them, or left by a process killed before its row was committed): it is
    adopted as it is, never rewritten or renamed."""
    if default_storage.exists(name):
        return name
    saved = default_storage.save(name, ContentFile(data))
    written = _written.get()
    if written is not None:
        written.append((sha256, saved))
    return saved


class UploadRejected(ValueError):
    """Uploads refused whole: `errors` names each bad file and its rule."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(errors))


def reserve_storage(owner, sizes):
    """Inside the transaction that stores them: refuse (LimitExceeded, 413) the images of
    `sizes` (sha256 -> bytes) if those the owner has not stored yet would pass their storage
    quota. The owner's row stays locked until the transaction ends, so that concurrent
    uploads of one user are counted one after another."""
    if owner is None:
        return
    lock_user(owner)
    owned = set(Image.objects.filter(created_by=owner, sha256__in=list(sizes))
                .values_list("sha256", flat=True))
    new_bytes = sum(size for sha256, size in sizes.items() if sha256 not in owned)
    if new_bytes:  # bytes they stored before cost nothing more
        check_storage(owner, new_bytes)


def store_uploads(uploads, *, by, album=None):
    """The one upload path (the album page and POST /api/images/): count the request
    (throttle scope "uploads"), check every file first, holding one in memory at a time,
    and refuse them all (UploadRejected) if any is bad; else, within the uploader's storage
    quota, store them all in one atomic_ingest and add them to `album`. Returns
    [(image, created)]."""
    throttle(by, "uploads")
    errors, sizes = [], {}
    for upload in uploads:
        try:
            check_file_size(upload.size, upload.name)  # before reading it
            checked = inspect_image(read_upload(upload), upload.name)
            sizes[checked.sha256] = len(checked.data)
        except ImageRejected as exc:
            errors.append(str(exc))
    if errors:
        raise UploadRejected(errors)
    with atomic_ingest():
        reserve_storage(by, sizes)
        stored = [store_image(read_upload(upload), filename=upload.name,
                              source=Image.Source.UPLOAD, created_by=by)
                  for upload in uploads]
        if album is not None:
            album.add_images([image for image, _ in stored], by=by)
    return stored


def store_generated(data, picture, *, filename, created_by=None, prompt="", params=None):
    """Store a generated image: PNG bytes the platform encoded itself from `picture` (a PIL
    image). They are not an upload: no upload size limit (an operator who lowers it must not
    make finished GPU work fail) and no second decode; the thumbnail is made from `picture`.
    Returns (image, created), as store_image."""
    checked = CheckedImage(data=data, filename=filename,
                           sha256=hashlib.sha256(data).hexdigest(), width=picture.width,
                           height=picture.height, format="PNG",
                           thumbnail=make_thumbnail(picture))
    return store_image(data, filename=filename, source=Image.Source.GENERATED,
                       created_by=created_by, prompt=prompt, params=params, checked=checked)
