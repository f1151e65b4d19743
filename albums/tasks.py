"""django-q2 entry points of the albums app: automatic captions.

Starting: `start_caption_run(album, by=user)` (album page, API) or
`start_image_caption_run(images, by=user)` (the admin action) makes a CaptionRun and
queues the task once the transaction commits. The task takes the run with a conditional
update (CaptionRun is LeasedWork, so a run is captioned once however many tasks name it)
and captions the images that have no caption when it starts, so captions people wrote
are never replaced. Of an album's images it captions only those whose caption the run's
starter may write (`captionable_by`): an album holds other users' images too, and their
captions are theirs.

A worker that dies mid-run leaves its run "running": `reclaim_stale_caption_runs` (when a
worker starts and every minute) queues it again with a new task, whose attempt picks up
the images still uncaptioned; after IMAGINEER_JOB_MAX_ATTEMPTS attempts the run fails.

The backend is IMAGINEER_CAPTION_BACKEND's (`captioner()`): the local model, or Anthropic's
Messages API. An image the backend cannot caption (`CaptionFailed`: the API refused it
after its retries) is counted as failed, named in the run's error, and the run goes on; a
caption is written only while the image still has none (`Image.set_auto_caption`), so a
person who captions it while the API is thinking keeps their words.
"""

import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django_q.tasks import async_task
from PIL import Image as PILImage

from accounts.limits import throttle
from workers.leases import Heartbeat, lease_interval, reclaim, worker_name

from .captioning import (
    DEFAULT_PROMPT,
    AnthropicOptions,
    CaptionFailed,
    CaptioningUnavailable,
    get_anthropic_captioner,
    get_captioner,
)
from .models import CaptionRun, Image

log = logging.getLogger(__name__)


def captioning_off():
    """Why automatic captioning is off with these settings (a sentence), or None."""
    if settings.IMAGINEER_CAPTION_BACKEND == "anthropic":
        if not settings.ANTHROPIC_API_KEY:
            return ("Automatic captioning is off: IMAGINEER_CAPTION_BACKEND is anthropic "
                    "but ANTHROPIC_API_KEY is not set.")
        return None
    if not settings.IMAGINEER_CAPTION_MODEL:
        return str(CaptioningUnavailable())
    return None


def check_captioning_available():
    reason = captioning_off()
    if reason:
        raise CaptioningUnavailable(reason)


def captioner():
    """The captioner the settings choose (loaded or connected once per process)."""
    check_captioning_available()
    if settings.IMAGINEER_CAPTION_BACKEND == "anthropic":
        return get_anthropic_captioner(AnthropicOptions(
            api_key=settings.ANTHROPIC_API_KEY,
            model=settings.IMAGINEER_ANTHROPIC_MODEL,
            prompt=settings.IMAGINEER_CAPTION_PROMPT or DEFAULT_PROMPT,
            max_side=settings.IMAGINEER_CAPTION_MAX_SIDE,
            max_retries=settings.IMAGINEER_CAPTION_MAX_RETRIES,
            base_url=settings.IMAGINEER_ANTHROPIC_BASE_URL or None,
        ))
    return get_captioner(settings.IMAGINEER_CAPTION_MODEL)


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
            transaction.on_commit(lambda: enqueue_run(run))
    return run


def start_image_caption_run(images, *, by):
    """Queue captioning of those of `images` (a queryset) that have no caption."""
    check_captioning_available()
    throttle(by, "captioning")
    ids = list(images.captionable_by(by).captioned(False).values_list("pk", flat=True))
    with transaction.atomic():
        run = CaptionRun.objects.create(created_by=by, total=len(ids), image_ids=ids)
        transaction.on_commit(lambda: enqueue_run(run))
    return run


def enqueue_run(run):
    """Queue the task of a queued run: its album's, or the chosen images'."""
    if run.album_id is not None:
        async_task("albums.tasks.caption_album", run.album_id, run.pk)
    else:
        async_task("albums.tasks.caption_images", run.image_ids, run.pk)


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
    return caption_each(run, album_images(album_id, run.created_by))


def caption_images(image_ids, run_id):
    run = CaptionRun.objects.select_related("created_by").get(pk=run_id)
    images = (Image.objects.captionable_by(run.created_by).filter(pk__in=image_ids)
              .captioned(False).order_by("pk"))
    return caption_each(run, images)


def caption_each(run, images):
    """Take the run and caption the images one by one, advancing it. An image the backend
    cannot caption (CaptionFailed) is counted and named, and the run goes on; anything else
    (the model will not load, a file is gone) fails the run (and the task). Stops when the
    run is no longer this worker's."""
    worker = worker_name()
    images = list(images.only("pk", "file", "thumbnail"))
    if not run.start(worker, total=len(images)):
        return f"caption run {run.pk} is not queued"
    image = None
    try:
        with Heartbeat(lambda: run.beat(worker), lease_interval()):  # loads can be long
            backend = captioner()
            for image in images:
                try:
                    text = backend.caption(open_picture(image, backend.input_side))
                except CaptionFailed as exc:
                    log.warning("image %s not captioned: %s", image.pk, exc)
                    if not run.advance(failure=f"image {image.pk}: {exc}"):
                        return f"caption run {run.pk} is no longer this worker's"
                    continue
                # A model that finds no words leaves the image uncaptioned, and so does a
                # person who captioned it meanwhile.
                if text:
                    image.set_auto_caption(text, by=run.created_by)
                if not run.advance(empty=not text):
                    return f"caption run {run.pk} is no longer this worker's"
    except Exception as exc:
        where = f"image {image.pk}: " if image is not None else ""
        log.exception("caption run failed", extra={"run": run.pk})
        run.fail(f"{where}{exc.__class__.__name__}: {exc}")
        raise
    run.succeed()
    return f"caption run {run.pk} succeeded"


def reclaim_stale_caption_runs():
    """Give back running caption runs whose worker is gone: dead on this host, or silent
    too long. They are queued again with a new task; after too many attempts they fail."""
    return reclaim(CaptionRun.objects.all(), requeued=enqueue_run)


def open_picture(image, side=384):
    """The picture to caption: the thumbnail (384 px, the input size of common captioners,
    and quick to decode) when the backend takes no more than that, else the original."""
    name = (image.thumbnail.name if side <= 384 else "") or image.file.name
    with default_storage.open(name, "rb") as f:
        picture = PILImage.open(f)
        picture.load()
    return picture
