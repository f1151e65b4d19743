"""django-q2 entry points of the albums app: automatic captions.

Starting: `start_caption_run(album, by=user)` (album page, API) or
`start_image_caption_run(images, by=user)` (the admin action) makes a CaptionRun and
queues the task once the transaction commits. The task captions the images that have no
caption when it starts, so a retried task picks up where the last one stopped, and
captions people wrote are never replaced. Of an album's images it captions only those
whose caption the run's starter may write (`captionable_by`): an album holds other users'
images too, and their captions are theirs.
"""

import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django_q.tasks import async_task
from PIL import Image as PILImage

from accounts.limits import throttle

from .captioning import CaptioningUnavailable, get_captioner
from .models import CaptionRun, Image, Label

log = logging.getLogger(__name__)


def check_captioning_available():
    if not settings.IMAGINEER_CAPTION_MODEL:
        raise CaptioningUnavailable()


def start_caption_run(album, *, by):
    """Queue captioning of the album's uncaptioned images; an active run is returned as is.
    Counted against `by`'s throttle ("captioning"): LimitExceeded past it."""
    check_captioning_available()
    throttle(by, "captioning")
    with transaction.atomic():
        run = album.caption_runs.filter(status__in=CaptionRun.ACTIVE).first()
        if run is None:
            run = CaptionRun.objects.create(
                album=album, created_by=by, total=album_images(album.pk, by).count()
            )
            transaction.on_commit(
                lambda: async_task("albums.tasks.caption_album", album.pk, run.pk)
            )
    return run


def start_image_caption_run(images, *, by):
    """Queue captioning of those of `images` (a queryset) that have no caption."""
    check_captioning_available()
    throttle(by, "captioning")
    ids = list(images.captionable_by(by).captioned(False).values_list("pk", flat=True))
    with transaction.atomic():
        run = CaptionRun.objects.create(created_by=by, total=len(ids))
        transaction.on_commit(lambda: async_task("albums.tasks.caption_images", ids, run.pk))
    return run


def album_images(album_id, by):
    """The album's uncaptioned images whose caption `by` (the run's starter) may write."""
    return (
        Image.objects.captionable_by(by)
        .filter(album_entries__album_id=album_id)
        .captioned(False)
        .order_by("album_entries__position")
    )


def caption_album(album_id, run_id):
    run = CaptionRun.objects.select_related("created_by").get(pk=run_id)
    caption_each(run, album_images(album_id, run.created_by))


def caption_images(image_ids, run_id):
    run = CaptionRun.objects.select_related("created_by").get(pk=run_id)
    images = (Image.objects.captionable_by(run.created_by).filter(pk__in=image_ids)
              .captioned(False).order_by("pk"))
    caption_each(run, images)


def caption_each(run, images):
    """Caption the images one by one, advancing the run; a failure fails the run."""
    images = list(images.only("pk", "file", "thumbnail"))
    run.start(len(images))
    image = None
    try:
        captioner = get_captioner(settings.IMAGINEER_CAPTION_MODEL)
        for image in images:
            text = captioner.caption(open_picture(image))
            if text:  # a model that finds no words leaves the image uncaptioned
                image.set_caption(text, by=run.created_by, source=Label.Source.AUTO)
            run.advance(empty=not text)
    except Exception as exc:
        where = f"image {image.pk}: " if image is not None else ""
        log.exception("caption run failed", extra={"run": run.pk})
        run.fail(f"{where}{exc.__class__.__name__}: {exc}")
        raise
    run.succeed()


def open_picture(image):
    """The picture to caption: the thumbnail (384 px, the input size of common captioners,
    and quick to decode), else the original."""
    name = image.thumbnail.name or image.file.name
    with default_storage.open(name, "rb") as f:
        picture = PILImage.open(f)
        picture.load()
    return picture
