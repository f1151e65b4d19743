"""Albums as training datasets: export to a zip, import from a zip or loose files.

The layout is the one kohya's sd-scripts and diffusers' training examples read: each
image next to a same-stem `.txt` holding its caption, plus a `metadata.jsonl`
(`{"file_name": ..., "text": ...}` per line) for diffusers' `imagefolder` loader.
Files are numbered in album order: `00001-42.png`, `00001-42.txt`, ...

An import is checked whole before anything is written, and refused (ArchiveRejected,
naming the entry and the rule) for: absolute paths or `..`, symlinks, encrypted or
repeated entries, more entries or more uncompressed bytes than configured, an entry whose
compression ratio marks a zip bomb, an oversized or non-UTF-8 caption file, or any image
that store_image would refuse. It is counted against the importer's throttle ("imports")
and must fit their storage quota (albums.ingest.reserve_storage). The declared sizes can be
trusted as limits: zipfile never inflates an entry past its declared size (and fails its
CRC check if it lies).
"""

import io
import json
import posixpath
import re
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage

from accounts.limits import throttle

from .ingest import (
    EXTENSIONS,
    atomic_ingest,
    check_file_size,
    inspect_image,
    read_upload,
    reserve_storage,
    store_image,
)
from .models import Image, Label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CAPTION_SUFFIX = ".txt"
# Text compresses very well; a small entry cannot be a bomb, whatever its ratio.
RATIO_CHECKED_FROM_BYTES = 1024 * 1024
CHUNK = 256 * 1024


class ArchiveRejected(ValueError):
    """An import refused whole. The message names the file or entry and the rule."""

    def __init__(self, name, reason):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


@dataclass
class Entry:
    """One file of an import: a zip entry or a loose uploaded file."""

    name: str
    size: int
    source: object  # a ZipFile (read by name) or an uploaded file

    def read(self):
        if isinstance(self.source, zipfile.ZipFile):
            return self.source.read(self.name)
        return read_upload(self.source)

    @property
    def stem(self):
        return posixpath.splitext(self.name)[0]

    @property
    def is_image(self):
        return self.name.lower().endswith(IMAGE_SUFFIXES)

    @property
    def is_caption(self):
        return self.name.lower().endswith(CAPTION_SUFFIX)


@dataclass
class Imported:
    image: Image
    created: bool


# Export


def album_export_name(album):
    return f"{album.slug}.zip"


def export_album(album):
    """The album as a zip, yielded in chunks as it is written (memory stays small)."""
    images = list(
        Image.objects.filter(album_entries__album=album)
        .with_caption()
        .order_by("album_entries__position", "album_entries__id")
    )
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        metadata = []
        for number, image in enumerate(images, start=1):
            stem = f"{number:05d}-{image.pk}"
            file_name = f"{stem}.{EXTENSIONS[image.format]}"
            with default_storage.open(image.file.name, "rb") as source:
                info = _zip_info(file_name, image, zipfile.ZIP_STORED)  # already compressed
                with archive.open(info, "w", force_zip64=image.size_bytes > 2**31) as out:
                    while chunk := source.read(CHUNK):
                        out.write(chunk)
                        yield sink.take()
            caption = image.caption
            archive.writestr(
                _zip_info(f"{stem}{CAPTION_SUFFIX}", image, zipfile.ZIP_DEFLATED), caption
            )
            metadata.append(json.dumps({"file_name": file_name, "text": caption}) + "\n")
            yield sink.take()
        archive.writestr(
            _zip_info("metadata.jsonl", None, zipfile.ZIP_DEFLATED), "".join(metadata)
        )
    yield sink.take()


def _zip_info(name, image, compression):
    when = image.created_at.timetuple()[:6] if image else (1980, 1, 1, 0, 0, 0)
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    return info


class _Sink(io.RawIOBase):
    """An unseekable stream that keeps what zipfile writes until it is taken."""

    def __init__(self):
        self.chunks = []

    def writable(self):
        return True

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)

    def take(self):
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


# Import


def import_dataset(album, uploads, *, by=None):
    """Check every upload (zip files or loose images and .txt captions), then store.

    Returns (imported, skipped): one Imported per image, in archive order, and the names
    of files that are neither images nor captions. Nothing is written unless everything
    passes; ArchiveRejected or ImageRejected otherwise.
    """
    throttle(by, "imports")
    entries = []
    for upload in uploads:
        entries.extend(upload_entries(upload))
    images = [entry for entry in entries if entry.is_image]
    skipped = [entry.name for entry in entries if not (entry.is_image or entry.is_caption)]
    if not images:
        raise ArchiveRejected("file", "the upload holds no PNG, JPEG or WebP image")
    check_totals(entries)
    captions = read_captions(entries)
    sizes = {}
    for entry in images:  # check every image before storing any
        checked = inspect_image(entry.read(), entry.name)
        sizes[checked.sha256] = len(checked.data)

    imported = []
    with atomic_ingest():
        reserve_storage(by, sizes)
        for entry in images:
            image, created = store_image(
                entry.read(), filename=entry.name, source=Image.Source.IMPORT, created_by=by
            )
            caption = captions.get(entry.stem, "")
            if caption and caption != image.caption:
                image.set_caption(caption, by=by, source=Label.Source.IMPORT)
            imported.append(Imported(image, created))
        album.add_images([item.image for item in imported], by=by)
    return imported, skipped


def upload_entries(upload):
    """The entries of one uploaded file: its checked zip entries, or the file itself."""
    name = upload.name
    max_bytes = settings.IMAGINEER_IMPORT_MAX_BYTES
    if upload.size > max_bytes:
        raise ArchiveRejected(name, f"the file is {upload.size} bytes; at most {max_bytes}")
    upload.seek(0)
    is_zip = name.lower().endswith(".zip") or upload.read(4) == b"PK\x03\x04"
    upload.seek(0)
    if not is_zip:
        return [Entry(name=name, size=upload.size, source=upload)]
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveRejected(name, "not a valid zip file") from exc
    infos = archive.infolist()
    max_entries = settings.IMAGINEER_IMPORT_MAX_ENTRIES
    if len(infos) > max_entries:
        raise ArchiveRejected(name, f"the zip has {len(infos)} entries; at most {max_entries}")
    entries, seen = [], set()
    for info in infos:
        check_zip_entry(info)
        if info.filename in seen:
            raise ArchiveRejected(info.filename, "the entry appears twice in the zip")
        seen.add(info.filename)
        if not (info.is_dir() or is_ignored(info.filename)):
            entries.append(Entry(name=info.filename, size=info.file_size, source=archive))
    return entries


def check_zip_entry(info):
    """Refuse an entry that could write outside the dataset or inflate without bound."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArchiveRejected(name, "absolute paths are not allowed in the zip")
    if ".." in parts:
        raise ArchiveRejected(name, "'..' is not allowed in zip entry paths")
    if "\0" in name:
        raise ArchiveRejected(name, "NUL characters are not allowed in zip entry paths")
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise ArchiveRejected(name, "symbolic links are not allowed in the zip")
    if info.flag_bits & 0x1:
        raise ArchiveRejected(name, "encrypted entries are not supported")
    max_ratio = settings.IMAGINEER_IMPORT_MAX_RATIO
    if (
        info.file_size >= RATIO_CHECKED_FROM_BYTES
        and info.file_size > max_ratio * max(info.compress_size, 1)
    ):
        ratio = info.file_size // max(info.compress_size, 1)
        raise ArchiveRejected(
            name,
            f"compression ratio {ratio}:1 is over the limit of {max_ratio}:1 (a zip bomb?)",
        )


def is_ignored(name):
    """Files that tools add to archives and that are not part of the dataset."""
    base = posixpath.basename(name)
    return name.startswith("__MACOSX/") or base.startswith(".") or base == "metadata.jsonl"


def check_totals(entries):
    total = sum(entry.size for entry in entries)
    max_bytes = settings.IMAGINEER_IMPORT_MAX_BYTES
    if total > max_bytes:
        raise ArchiveRejected(
            "file", f"the import holds {total} bytes uncompressed; at most {max_bytes}"
        )
    for entry in entries:
        if entry.is_image:
            check_file_size(entry.size, entry.name)


def read_captions(entries):
    """Caption text by stem, from the .txt entries (checked for size and encoding)."""
    max_bytes = settings.IMAGINEER_IMPORT_MAX_CAPTION_BYTES
    captions = {}
    for entry in entries:
        if not entry.is_caption:
            continue
        if entry.size > max_bytes:
            raise ArchiveRejected(
                entry.name, f"the caption file is {entry.size} bytes; at most {max_bytes}"
            )
        try:
            text = entry.read().decode("utf-8-sig").strip()
        except UnicodeDecodeError as exc:
            raise ArchiveRejected(entry.name, "the caption file is not UTF-8 text") from exc
        if "\x00" in text:  # no text holds one, and PostgreSQL refuses to store it
            raise ArchiveRejected(entry.name, "the caption file is not text: it holds a NUL "
                                              "character")
        captions[entry.stem] = text
    return captions
