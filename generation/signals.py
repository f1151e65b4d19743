"""What generation does when albums' images change.

A new image that came from outside (an upload, an import, a scrape) is queued for the
NSFW classifier (nsfw.py).

A job's starting picture deleted before the job ran: the job fails, saying so.

A job keeps its `init_image` and `mask` as links to Image rows (SET_NULL on delete, so
that deleting a picture never deletes the history of what was made from it). Without
this, an image-to-image job whose source went while it waited would run as text to image
and look as if it had worked. pre_delete fires for every way a row goes (instance.delete(),
queryset.delete(), the admin's bulk delete, an album's cascade).
"""

from django.db.models import Q
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from albums.models import Image

from .models import Job, Status
from .nsfw import queue_scoring


@receiver(pre_delete, sender=Image, dispatch_uid="generation.fail_jobs_of_deleted_source")
def fail_jobs_of_deleted_source(sender, instance, **kwargs):
    waiting = Job.objects.filter(Q(init_image=instance) | Q(mask=instance),
                                 status=Status.QUEUED)
    for job in waiting:
        field = "init_image" if job.init_image_id == instance.pk else "mask"
        if job.fail(f"its {field} was deleted before the job ran") and job.batch_id:
            job.batch.refresh_status()


@receiver(post_save, sender=Image, dispatch_uid="generation.score_ingested_images")
def score_ingested_image(sender, instance, created, raw=False, **kwargs):
    """An uploaded, imported or scraped image: the NSFW classifier scores it on a worker
    once the row is committed (nsfw.py). Generated images are scored by their job."""
    if created and not raw and instance.source != Image.Source.GENERATED:
        queue_scoring(instance)
