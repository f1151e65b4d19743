"""Album.image_count, kept by the database (albums/counts.py): right after every way
entries come and go, in the same transaction, under concurrent writers, never put back
by an Album read earlier, and filled for existing albums by the migration."""

import threading

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from albums import counts
from albums.models import Album, AlbumImage, Image

from .images import make_image


def rows(n, owner, start=0, model=Image):
    """n Image rows without files (the count does not look at files); `model` is an older
    migration state's Image where a test writes before the latest migrations."""
    return model.objects.bulk_create([model(
        file=f"images/c{i}.png", thumbnail=f"thumbnails/c{i}.webp", width=1, height=1,
        size_bytes=1, format="PNG", sha256=f"{i:064x}", source="upload", created_by_id=owner.pk)
        for i in range(start, start + n)])


def stored(album):
    return Album.objects.get(pk=album.pk).image_count


def actual(album):
    return AlbumImage.objects.filter(album=album).count()


@pytest.mark.django_db
def test_it_follows_every_way_entries_come_and_go(editor):
    album = Album.objects.create(name="Counted", owner=editor)
    other = Album.objects.create(name="Other", owner=editor)
    images = rows(6, editor)
    assert stored(album) == 0
    assert album.add_images(images[:4]) == 4 and stored(album) == 4
    assert album.add_images(images[:5]) == 1 and stored(album) == 5  # the new one only
    assert album.remove_images(images[:2]) == 2 and stored(album) == 3
    album.images.add(images[5])  # the M2M manager, as the admin's forms would
    assert stored(album) == 4
    other.add_images(images[2:4])
    images[2].delete()  # its entries in both albums go with it
    assert (stored(album), stored(other)) == (3, 1)
    Image.objects.filter(pk__in=[images[3].pk, images[4].pk]).delete()  # in bulk
    assert (stored(album), stored(other)) == (1, 0)
    with connection.cursor() as cursor:  # raw SQL, and an entry moved between albums
        cursor.execute("UPDATE albums_albumimage SET album_id = %s WHERE album_id = %s",
                       [other.pk, album.pk])
    assert (stored(album), stored(other)) == (0, 1)
    with pytest.raises(RuntimeError), transaction.atomic():
        other.add_images(images[:2])
        assert stored(other) == 3  # in the same transaction as the entries
        raise RuntimeError
    assert stored(other) == 1  # rolled back with them


@pytest.mark.django_db
def test_saving_an_album_read_earlier_keeps_the_count(editor):
    album = Album.objects.create(name="Stale", owner=editor)
    earlier = Album.objects.get(pk=album.pk)
    album.add_images(rows(3, editor))
    earlier.name = "Renamed"
    earlier.save()  # its image_count, 0, is not written
    assert (stored(album), Album.objects.get(pk=album.pk).name) == (3, "Renamed")


@pytest.mark.django_db
def test_album_lists_read_it_without_counting(api_as, editor):
    album = Album.objects.create(name="Listed", owner=editor)
    album.add_images([make_image(1, created_by=editor), make_image(2, created_by=editor)])
    response = api_as(editor).get(f"/api/albums/{album.pk}/")
    assert response.json()["image_count"] == 2
    sql = str(Album.objects.with_summary().query).lower()
    assert "count(" not in sql


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_removes_and_deletes_keep_it_right(editor):
    album = Album.objects.create(name="Busy", owner=editor)
    added = rows(24, editor)  # added by four writers at once, one or two at a time
    present = rows(12, editor, start=100)  # in the album: removed or deleted meanwhile
    album.add_images(present)
    start, errors = threading.Barrier(6), []

    def writer(work):
        def run():
            try:
                start.wait(10)
                work(Album.objects.get(pk=album.pk))
            except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
                errors.append(exc)
            finally:
                connection.close()
        return threading.Thread(target=run)

    def adder(batch):
        return writer(lambda mine: [mine.add_images(batch[i:i + 2])
                                    for i in range(0, len(batch), 2)])

    threads = [adder(added[n::4]) for n in range(4)]
    threads.append(writer(lambda mine: [mine.remove_images([image])
                                        for image in present[:6]]))
    threads.append(writer(lambda mine: [Image.objects.get(pk=image.pk).delete()
                                        for image in present[6:]]))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stored(album) == actual(album) == 24


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_albums_made_before_it(editor):
    before = [("albums", "0009_search_prefix")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before[0]).apps
        album = old.get_model("albums", "Album").objects.create(
            name="Old", slug="old", owner_id=editor.pk)
        image_ids = [image.pk for image in rows(3, editor, model=old.get_model("albums", "Image"))]
        old.get_model("albums", "AlbumImage").objects.bulk_create([
            old.get_model("albums", "AlbumImage")(album=album, image_id=pk, position=n)
            for n, pk in enumerate(image_ids)])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert stored(album) == 3
    Album.objects.update(image_count=0)  # and recount may be run again
    counts.recount()
    assert stored(album) == 3
