"""Files for tests: real PNG/JPEG/WebP images, broken ones, and zip datasets."""

import io
import struct
import warnings
import zipfile
import zlib

from PIL import Image as PILImage

from albums.ingest import store_image
from albums.models import Image


def image_bytes(format="PNG", size=(64, 48), color=(200, 30, 30)):
    """A real image; a different color makes different bytes (and a different sha256)."""
    out = io.BytesIO()
    PILImage.new("RGB", size, color).save(out, format)
    return out.getvalue()


def png_bytes(color=(200, 30, 30), size=(64, 48)):
    return image_bytes("PNG", size, color)


def jpeg_bytes(color=(30, 200, 30), size=(64, 48)):
    out = io.BytesIO()
    # Noise, so that the JPEG has enough entropy data for a truncation to matter.
    noise = PILImage.effect_noise(size, 40).convert("RGB")
    PILImage.blend(PILImage.new("RGB", size, color), noise, 0.5).save(out, "JPEG")
    return out.getvalue()


def png_declaring(width, height):
    """A tiny PNG whose header declares width x height pixels: a decompression bomb."""

    def chunk(kind, data):
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


def jpeg_declaring(width, height):
    """A small JPEG whose frame header declares width x height pixels."""
    data = bytearray(jpeg_bytes(size=(16, 16)))
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def zip_of(entries, compression=zipfile.ZIP_DEFLATED):
    """A zip from (name, bytes) pairs or ready ZipInfo objects."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name")  # made on purpose in one test
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def make_image(n=0, *, created_by=None, source=Image.Source.UPLOAD, **fields):
    """Store a distinct real image (n picks its color) and return the Image."""
    data = png_bytes(color=(n % 256, (n // 256) % 256, 77))
    image, _ = store_image(
        data, filename=f"image-{n}.png", source=source, created_by=created_by, **fields
    )
    return image
