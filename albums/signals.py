"""Deleting an Image removes its files: the one place that does it.

post_delete fires for every way a row goes (instance.delete(), queryset.delete(), the
admin's bulk delete, a cascade). The files go only once the transaction commits, so a
rolled-back delete keeps both the row and its files.
"""

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Image


@receiver(post_delete, sender=Image)
def delete_image_files(sender, instance, **kwargs):
    names = [name for name in (instance.file.name, instance.thumbnail.name) if name]
    transaction.on_commit(lambda: delete_files(names))


def delete_files(names):
    for name in names:
        default_storage.delete(name)
