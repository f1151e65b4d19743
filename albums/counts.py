"""Each album's number of images, stored on its row (`Album.image_count`) so that album
lists read it instead of counting every album's entries (the album list at a million
images: bench/library_scale.py).

The database keeps it, by triggers on albums_albumimage, in the transaction that adds or
removes the entries, however they are written: Album.add_images and remove_images, an
image's deletion (its entries go with it), an album's, the admin's inline, raw SQL.
Concurrent writers cannot lose an update: each trigger adds to the row's value under the
row's lock (PostgreSQL) or the one writer's lock (SQLite). Album.save() never writes the
column, so an Album read before images were added cannot put back an older count.

PostgreSQL counts once per statement (transition tables: a bulk add of 10,000 entries is
one UPDATE of the album); SQLite, which has row triggers only, once per entry.

The migration (0010_album_image_count) adds the column, creates the triggers and fills
the column for existing albums (`recount`, which may be run again).
"""

from django.db import connection

from .search import run

POSTGRESQL = [
    """CREATE FUNCTION albums_album_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE albums_album SET image_count = image_count + added.n
            FROM (SELECT album_id, count(*) AS n FROM new_entries GROUP BY album_id) added
            WHERE albums_album.id = added.album_id;
            RETURN NULL;
        END $$""",
    """CREATE FUNCTION albums_album_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE albums_album SET image_count = image_count - removed.n
            FROM (SELECT album_id, count(*) AS n FROM old_entries GROUP BY album_id) removed
            WHERE albums_album.id = removed.album_id;
            RETURN NULL;
        END $$""",
    """CREATE FUNCTION albums_album_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE albums_album SET image_count = image_count - 1 WHERE id = OLD.album_id;
            UPDATE albums_album SET image_count = image_count + 1 WHERE id = NEW.album_id;
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER albums_album_count_added AFTER INSERT ON albums_albumimage
        REFERENCING NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION albums_album_count_added()""",
    """CREATE TRIGGER albums_album_count_removed AFTER DELETE ON albums_albumimage
        REFERENCING OLD TABLE AS old_entries
        FOR EACH STATEMENT EXECUTE FUNCTION albums_album_count_removed()""",
    """CREATE TRIGGER albums_album_count_moved AFTER UPDATE OF album_id ON albums_albumimage
        FOR EACH ROW WHEN (OLD.album_id IS DISTINCT FROM NEW.album_id)
        EXECUTE FUNCTION albums_album_count_moved()""",
]

POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS albums_album_count_added ON albums_albumimage",
    "DROP TRIGGER IF EXISTS albums_album_count_removed ON albums_albumimage",
    "DROP TRIGGER IF EXISTS albums_album_count_moved ON albums_albumimage",
    "DROP FUNCTION IF EXISTS albums_album_count_added()",
    "DROP FUNCTION IF EXISTS albums_album_count_removed()",
    "DROP FUNCTION IF EXISTS albums_album_count_moved()",
]

SQLITE = [
    """CREATE TRIGGER albums_album_count_added AFTER INSERT ON albums_albumimage BEGIN
        UPDATE albums_album SET image_count = image_count + 1 WHERE id = new.album_id; END""",
    """CREATE TRIGGER albums_album_count_removed AFTER DELETE ON albums_albumimage BEGIN
        UPDATE albums_album SET image_count = image_count - 1 WHERE id = old.album_id; END""",
    """CREATE TRIGGER albums_album_count_moved AFTER UPDATE OF album_id ON albums_albumimage
        WHEN old.album_id IS NOT new.album_id BEGIN
        UPDATE albums_album SET image_count = image_count - 1 WHERE id = old.album_id;
        UPDATE albums_album SET image_count = image_count + 1 WHERE id = new.album_id; END""",
]

SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "albums_album_count_added", "albums_album_count_removed", "albums_album_count_moved")]

RECOUNT = """UPDATE albums_album SET image_count = (
    SELECT count(*) FROM albums_albumimage WHERE albums_albumimage.album_id = albums_album.id)"""


def create_triggers(apps, schema_editor):
    """The migration's forward step: the triggers, then every album counted."""
    run(schema_editor.connection, POSTGRESQL, SQLITE)
    recount(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    run(schema_editor.connection, POSTGRESQL_DROP, SQLITE_DROP)


def recount(db=connection):
    """Count every album's images afresh (what the triggers keep right from then on)."""
    run(db, [RECOUNT], [RECOUNT])
