"""Each album's number of images on its row, kept by triggers (albums/counts.py)."""

from django.db import migrations, models

from albums.counts import create_triggers, drop_triggers


class Migration(migrations.Migration):
    dependencies = [("albums", "0009_search_prefix")]

    operations = [
        migrations.AddField(
            model_name="album", name="image_count",
            field=models.PositiveIntegerField(
                default=0, editable=False,
                help_text="How many images the album holds: kept by the database "
                          "(albums/counts.py)."),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
