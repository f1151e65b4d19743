"""Deleting an Image releases its files: the one place that does it.

post_delete fires for every way a row goes (instance.delete(), queryset.delete(), the
admin's bulk delete, a cascade). The files go only once the transaction commits, so a
rolled-back delete keeps both the row and its files, and only if no other image names
them: images of the same bytes, one per owner, share their files (ingest.py).
"""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .ingest import release_files
from .models import Image


@receiver(post_delete, sender=Image)
def release_image_files(sender, instance, **kwargs):
    names = [name for name in (instance.file.name, instance.thumbnail.name) if name]
    transaction.on_commit(lambda: release_files(instance.sha256, names))
