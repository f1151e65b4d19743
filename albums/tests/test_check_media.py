import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from albums.tests.images import make_image

pytestmark = pytest.mark.django_db


def run():
    from io import StringIO

    out = StringIO()
    try:
        call_command("check_media", stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_it_passes_when_every_file_has_its_row(viewer):
    make_image(created_by=viewer)
    out, error = run()
    assert error is None
    assert "0 files without rows, 0 rows without files" in out


def test_it_lists_files_without_rows_and_rows_without_files(viewer):
    image = make_image(created_by=viewer)
    default_storage.save("images/ab/stray.png", ContentFile(b"left behind"))
    default_storage.delete(image.thumbnail.name)
    out, error = run()
    assert "file without row: images/ab/stray.png" in out
    assert f"row without file: albums.Image#{image.pk}.thumbnail -> {image.thumbnail.name}" in out
    assert "1 files without rows, 1 rows without files" in error


def test_it_names_every_row_of_a_shared_file(viewer, other_viewer):
    # Two owners' images of the same bytes name the same two files.
    from albums.ingest import store_image

    from .images import png_bytes

    mine, _ = store_image(png_bytes(), filename="a.png", source="upload", created_by=viewer)
    theirs, _ = store_image(png_bytes(), filename="a.png", source="upload",
                            created_by=other_viewer)
    assert run()[1] is None
    default_storage.delete(mine.file.name)
    out, error = run()
    assert (f"row without file: albums.Image#{mine.pk}.file, albums.Image#{theirs.pk}.file -> "
            f"{mine.file.name}") in out
    assert "0 files without rows, 1 rows without files" in error


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_from_the_command_line(viewer):
    from imagineer.testing import manage

    default_storage.save("thumbnails/zz/stray.webp", ContentFile(b"left behind"))
    result = manage("check_media")
    assert result.returncode == 1
    assert "file without row: thumbnails/zz/stray.webp" in result.stdout
