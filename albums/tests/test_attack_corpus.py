"""The attack corpus: hostile files sent through every input path that takes them.

Every case is refused with 400 and a message that names the file (or the zip entry) and
the rule, and leaves nothing behind: no file under the media root, no Album, Image,
AlbumImage or Label row. Image cases go through each path that accepts images (the API
upload, the album page's upload form, and the dataset import, loose and zipped); zip cases
through the import. Each hostile file travels beside a good image, so the test also shows
that a request is refused whole. docs/reliability.md has the table of cases and paths.

The rules themselves live in albums/ingest.py (images) and albums/archive.py (zips).
"""

import html
import io
import re
import struct
import zipfile
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from albums.models import Album

from .images import (
    image_bytes,
    jpeg_bytes,
    jpeg_declaring,
    png_bytes,
    png_declaring,
    zip_of,
)

pytestmark = pytest.mark.django_db

GOOD = png_bytes((9, 99, 199))  # a color no other test image has
SCRIPT = b"<html><body><script>alert(document.cookie)</script></body></html>"


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the file name, or the zip entry's name: messages start with it
    make: object  # () -> bytes
    reason: str  # what the message says after the name


def truncated(data):
    return data[: len(data) // 2]


def gif_script_polyglot():
    """A GIF header that is also JavaScript: `GIF89a/*...*/=alert(1)//` (the GIFAR trick)."""
    return b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=alert(document.cookie)//;" + bytes(20)


def png_with_zip():
    return png_bytes((1, 2, 3)) + zip_of([("payload.html", SCRIPT)])


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)">'
       b"<script>alert(1)</script><rect width='10' height='10'/></svg>")

IMAGE_CASES = [
    Case("truncated-png", "half.png", lambda: truncated(png_bytes(size=(300, 300))),
         "the image is truncated or corrupt"),
    Case("png-without-its-last-byte", "cut.png", lambda: png_bytes((4, 5, 6))[:-1],
         "the image is truncated or corrupt"),
    Case("truncated-jpeg", "half.jpg", lambda: truncated(jpeg_bytes(size=(300, 300))),
         "the image is truncated or corrupt"),
    Case("jpeg-without-end-marker", "cut.jpg", lambda: jpeg_bytes(size=(300, 300))[:-2],
         "the image is truncated or corrupt"),
    Case("truncated-webp", "half.webp", lambda: truncated(image_bytes("WEBP", (300, 300))),
         "the image is truncated or corrupt"),
    Case("zero-bytes", "empty.png", lambda: b"", "the file is empty"),
    Case("text", "notes.png", lambda: b"hello, not an image", "not a PNG, JPEG or WebP image"),
    Case("html-page", "page.png", lambda: SCRIPT, "not a PNG, JPEG or WebP image"),
    Case("svg-with-script", "drawing.png", lambda: SVG, "not a PNG, JPEG or WebP image"),
    Case("gif", "anim.png", lambda: image_bytes("GIF"), "not a PNG, JPEG or WebP image"),
    Case("gif-javascript-polyglot", "gifjs.png", gif_script_polyglot,
         "not a PNG, JPEG or WebP image"),
    Case("png-zip-polyglot", "png-zip.png", png_with_zip, "bytes follow the end of the image"),
    Case("png-html-polyglot", "png-html.png", lambda: png_bytes((7, 8, 9)) + SCRIPT,
         "bytes follow the end of the image"),
    Case("jpeg-html-polyglot", "jpeg-html.jpg", lambda: jpeg_bytes() + SCRIPT,
         "bytes follow the end of the image"),
    Case("webp-script-polyglot", "webp-js.webp",
         lambda: image_bytes("WEBP") + b"/*" + SCRIPT + b"*/",
         "bytes follow the end of the image"),
    Case("png-declaring-1e9-pixels", "bomb.png", lambda: png_declaring(31_623, 31_623),
         "the image is a decompression bomb; at most 40000000 pixels"),
    Case("jpeg-declaring-1e9-pixels", "bomb.jpg", lambda: jpeg_declaring(31_623, 31_623),
         "the image is a decompression bomb; at most 40000000 pixels"),
    Case("png-over-the-pixel-limit", "large.png", lambda: png_declaring(8_000, 6_000),
         "the image is 8000x6000 = 48000000 pixels; at most 40000000"),
]


def symlink_zip():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.png", GOOD)
        link = zipfile.ZipInfo("b.png")
        link.external_attr = 0o120777 << 16  # a symbolic link, pointing at:
        archive.writestr(link, "/etc/passwd")
    return out.getvalue()


def patched_central_directory(data, offset, value):
    """The zip `data` with a field of its (last) central directory record replaced."""
    record = data.rindex(b"PK\x01\x02")
    fmt = "<H" if offset == 8 else "<I"
    return data[: record + offset] + struct.pack(fmt, value) + data[
        record + offset + struct.calcsize(fmt):]


def declared_size_zip(size):
    """A zip whose last entry claims to hold `size` bytes, stored (ratio 1:1)."""
    data = zip_of([("a.png", GOOD), ("b.png", png_bytes((3, 3, 3)))], zipfile.ZIP_STORED)
    data = patched_central_directory(data, 20, size)  # compressed size
    return patched_central_directory(data, 24, size)  # uncompressed size


def encrypted_zip():
    data = zip_of([("a.png", GOOD), ("b.png", png_bytes((3, 3, 3)))])
    return patched_central_directory(data, 8, 0x1)  # general purpose flags: encrypted


ZIP_CASES = [
    Case("zip-slip", "../x.png", lambda: zip_of([("a.png", GOOD), ("../x.png", png_bytes())]),
         "'..' is not allowed in zip entry paths"),
    Case("zip-slip-nested", "a/../../x.png",
         lambda: zip_of([("a.png", GOOD), ("a/../../x.png", png_bytes())]),
         "'..' is not allowed in zip entry paths"),
    Case("zip-slip-backslash", "..\\x.png",
         lambda: zip_of([("a.png", GOOD), ("..\\x.png", png_bytes())]),
         "'..' is not allowed in zip entry paths"),
    Case("absolute-path", "/tmp/x.png",  # noqa: S108 (a hostile zip entry's name, no file)
         lambda: zip_of([("a.png", GOOD), ("/tmp/x.png", png_bytes())]),  # noqa: S108 (as above)
         "absolute paths are not allowed in the zip"),
    Case("drive-path", "C:/x.png", lambda: zip_of([("a.png", GOOD), ("C:/x.png", png_bytes())]),
         "absolute paths are not allowed in the zip"),
    Case("symlink-entry", "b.png", symlink_zip, "symbolic links are not allowed in the zip"),
    Case("zip-bomb-ratio", "b.txt", lambda: zip_of([("a.png", GOOD), ("b.txt", bytes(2**21))]),
         "compression ratio 1023:1 is over the limit of 100:1"),
    Case("zip-bomb-declared-size", "file", lambda: declared_size_zip(3_000_000_000),
         "the import holds 3000"),  # more bytes uncompressed than IMPORT_MAX_BYTES
    Case("encrypted-entry", "b.png", encrypted_zip, "encrypted entries are not supported"),
    Case("huge-caption", "a.txt",
         lambda: zip_of([("a.png", GOOD), ("a.txt", "word " * 20_000)], zipfile.ZIP_STORED),
         "the caption file is 100000 bytes; at most 65536"),
    Case("binary-caption", "a.txt", lambda: zip_of([("a.png", GOOD), ("a.txt", b"\xff\xfe\0")]),
         "the caption file is not UTF-8 text"),
    Case("nul-caption", "a.txt",  # a 500 on PostgreSQL, which cannot store a NUL
         lambda: zip_of([("a.png", GOOD), ("a.txt", b"a caption\0with a NUL")]),
         "the caption file is not text: it holds a NUL character"),
    Case("repeated-entry", "a.png", lambda: zip_of([("a.png", GOOD), ("a.png", jpeg_bytes())]),
         "the entry appears twice in the zip"),
    Case("no-images", "file", lambda: zip_of([("a.txt", "just words")]),
         "the upload holds no PNG, JPEG or WebP image"),
    Case("not-a-zip", "dataset.zip", lambda: b"PK\x03\x04 this is not really a zip",
         "not a valid zip file"),
]


def files(*named):
    return [SimpleUploadedFile(name, data) for name, data in named]


def api_upload(client, album, name, data):
    response = client.post("/api/images/", {"file": files(("good.png", GOOD), (name, data)),
                                            "album": album.pk})
    return response.status_code, response.json()["file"]


def page_upload(client, album, name, data):
    response = client.post(f"/albums/{album.slug}/upload/",
                           {"file": files(("good.png", GOOD), (name, data))})
    errors = re.findall(r'<li class="error">(.*?)</li>', response.content.decode(), re.S)
    return response.status_code, [
        html.unescape(error).removeprefix("Nothing was uploaded: ") for error in errors
    ]


def api_import(client, album, *uploads):
    response = client.post(f"/api/albums/{album.pk}/import/", {"file": files(*uploads)})
    return response.status_code, response.json()["file"]


def api_import_loose(client, album, name, data):
    return api_import(client, album, ("good.png", GOOD), (name, data))


def api_import_zip(client, album, name, data):
    return api_import(client, album, ("dataset.zip", zip_of([("good.png", GOOD),
                                                             (name, data)])))


IMAGE_PATHS = {
    "api-upload": api_upload,
    "page-upload": page_upload,
    "api-import-loose": api_import_loose,
    "api-import-zip": api_import_zip,
}


@pytest.fixture
def album(viewer):
    return Album.objects.create(name="Target", owner=viewer)


@pytest.fixture
def clients(client, api_as, viewer):
    """The viewer signed in twice: with a session (pages) and with a token (the API)."""
    client.force_login(viewer)
    return {"page": client, "api": api_as(viewer)}


def refused(clients, send, stored_state, *args):
    before = stored_state()
    client = clients["page" if send is page_upload else "api"]
    status, messages = send(client, *args)
    assert stored_state() == before, "nothing may be written"
    return status, messages


@pytest.mark.parametrize("path", IMAGE_PATHS)
@pytest.mark.parametrize("case", IMAGE_CASES, ids=[case.id for case in IMAGE_CASES])
def test_it_refuses_each_hostile_image_on_every_path(clients, album, stored_state, path,
                                                     case):
    status, messages = refused(clients, IMAGE_PATHS[path], stored_state, album, case.name,
                               case.make())
    assert status == 400
    assert [m for m in messages if m.startswith(f"{case.name}: ") and case.reason in m], (
        messages)


@pytest.mark.parametrize("case", ZIP_CASES, ids=[case.id for case in ZIP_CASES])
def test_it_refuses_each_hostile_zip(clients, album, stored_state, case):
    status, messages = refused(clients, api_import, stored_state, album,
                               ("dataset.zip", case.make()))
    assert status == 400
    [message] = messages
    assert message.startswith(f"{case.name}: {case.reason}"), message


def test_it_never_opens_a_zip_inside_a_zip(clients, album):
    inner = zip_of([("../escape.png", png_bytes((5, 5, 5))), ("x.png", png_bytes((6, 6, 6)))])
    response = clients["api"].post(f"/api/albums/{album.pk}/import/", {"file": files(
        ("dataset.zip", zip_of([("a.png", GOOD), ("inner.zip", inner)])))})
    assert response.status_code == 201
    assert response.json()["skipped"] == ["inner.zip"]
    assert album.images.count() == 1


def test_it_keeps_text_inside_an_image_but_serves_it_only_as_an_image(clients, album):
    """Text chunks are part of an image (generation parameters live there), so markup in
    them is stored; the file is then served so that no browser runs it: its own image
    type, nosniff (no script or page from an image) and the site's CSP."""
    info = PngInfo()
    info.add_text("parameters", SCRIPT.decode())
    out = io.BytesIO()
    PILImage.new("RGB", (8, 8), (10, 20, 30)).save(out, "PNG", pnginfo=info)
    response = clients["api"].post("/api/images/", {"file": files(("meta.png", out.getvalue()))})
    assert response.status_code == 201
    served = clients["page"].get(response.json()[0]["url"])
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in served["Content-Security-Policy"]
    assert served["Content-Disposition"].startswith("inline; filename=")
