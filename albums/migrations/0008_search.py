"""The search index over prompts and captions, and the triggers that keep it (albums/search.py)."""

from django.db import migrations

from albums.search import create_index, drop_index


class Migration(migrations.Migration):
    dependencies = [("albums", "0007_scrape_run")]

    operations = [migrations.RunPython(create_index, drop_index)]
