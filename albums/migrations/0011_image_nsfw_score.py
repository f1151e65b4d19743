"""The NSFW classifier's score and whether a person set the flag (generation/nsfw.py).

`nsfw_by_hand` is added with ALTER TABLE ... ADD COLUMN ... DEFAULT, not Django's AddField:
on SQLite that would rebuild albums_image, which drops the search index's triggers
(albums/search.py) and copies every row; PostgreSQL adds such a column without rewriting
the table either way. The column keeps its database default (rows made outside the ORM
read false)."""

from django.db import migrations, models


def add_nsfw_by_hand(apps, schema_editor):
    kind = (
        "boolean NOT NULL DEFAULT false"
        if schema_editor.connection.vendor == "postgresql"
        else "bool NOT NULL DEFAULT 0"
    )
    schema_editor.execute(f"ALTER TABLE albums_image ADD COLUMN nsfw_by_hand {kind}")


def drop_nsfw_by_hand(apps, schema_editor):
    schema_editor.execute("ALTER TABLE albums_image DROP COLUMN nsfw_by_hand")


class Migration(migrations.Migration):
    dependencies = [
        ("albums", "0010_album_image_count"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="image",
                    name="nsfw_by_hand",
                    field=models.BooleanField(
                        default=False,
                        editable=False,
                        help_text="A curator set or cleared the flag: the classifier no longer changes it.",
                        verbose_name="NSFW set by hand",
                    ),
                )
            ],
            database_operations=[migrations.RunPython(add_nsfw_by_hand, drop_nsfw_by_hand)],
        ),
        migrations.AddField(
            model_name="image",
            name="nsfw_score",
            field=models.FloatField(
                blank=True,
                editable=False,
                help_text="The NSFW classifier's probability that the image is not safe for work (IMAGINEER_NSFW_MODEL); empty: not scored.",
                null=True,
                verbose_name="NSFW score",
            ),
        ),
    ]
