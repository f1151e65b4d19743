"""Local copies of files kept in the media storage (default_storage), for the code that
needs a path: diffusers loading a LoRA, the trainer reading images. The storage may be a
bucket on another machine (IMAGINEER_STORAGE=s3), so nothing else reads media by path."""

import hashlib
import os
import tempfile
from pathlib import Path

from django.core.files.storage import default_storage

CHUNK = 1 << 20


def fetch(name, path, *, sha256=None):
    """Copy the stored file `name` to the local `path`; return the path.

    The bytes go to a temporary file beside `path`, renamed at the end: a reader, or a
    second worker fetching the same file at the same time, never sees half a file. With
    `sha256`, a copy whose hash differs is refused (OSError) and nothing is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as copy, default_storage.open(name, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                copy.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise OSError(f"{name}: the stored file's sha256 is {digest.hexdigest()}, "
                          f"not {sha256}")
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path
