"""The orphan check: files in the media storage that no row names, and rows whose file is
gone. Every FileField of every installed model counts, so files of later apps (models,
LoRAs, kohya exports) are checked too without this app importing them. One file may be
named by several rows (images of the same bytes, one per owner, share their files)."""

from django.apps import apps
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import models


def stored_files(storage, directory=""):
    """Every file name under `directory` of the storage, recursively."""
    try:
        folders, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{directory}/{name}" if directory else name
    for folder in folders:
        yield from stored_files(storage, f"{directory}/{folder}" if directory else folder)


def referenced_files():
    """{file name: ["app.Model#pk.field", ...]} for every non-empty FileField value."""
    referenced = {}
    for model in apps.get_models():
        fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        for field in fields:
            rows = (model._default_manager.exclude(**{field: ""}).order_by("pk")
                    .values_list("pk", field))
            for pk, name in rows.iterator():
                referenced.setdefault(name, []).append(f"{model._meta.label}#{pk}.{field}")
    return referenced


class Command(BaseCommand):
    help = ("List media files without rows and rows without files; exit with status 1 when "
            "there are any.")

    def handle(self, *args, **options):
        referenced = referenced_files()
        on_disk = set(stored_files(default_storage))
        orphans = sorted(on_disk - set(referenced))
        missing = sorted(name for name in referenced if name not in on_disk)
        for name in orphans:
            self.stdout.write(f"file without row: {name}")
        for name in missing:
            self.stdout.write(f"row without file: {', '.join(referenced[name])} -> {name}")
        summary = (f"{len(on_disk)} files, {len(referenced)} file references: "
                   f"{len(orphans)} files without rows, {len(missing)} rows without files.")
        if orphans or missing:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
