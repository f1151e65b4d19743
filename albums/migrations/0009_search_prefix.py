"""Prefix indexes for "as you type" search on SQLite's FTS5 table (albums/search.py)."""

from django.db import migrations

from albums.search import add_prefix_index


class Migration(migrations.Migration):
    dependencies = [("albums", "0008_search")]

    operations = [migrations.RunPython(add_prefix_index, migrations.RunPython.noop)]
