"""Automatic NSFW flags: the workers score new images with the classifier that
IMAGINEER_NSFW_MODEL names (generation/engine/nsfw.py) and flag those whose score reaches
the site's threshold (SiteSettings.nsfw_threshold, which admins set).

- Generated images are scored by the generation task itself, from the pictures in memory,
  and their scores stored in the transaction that stores the images (tasks.run_jobs): a
  finished job's images are flagged from the first moment anyone sees them.
- Uploaded, imported and scraped images (every Image that albums.ingest makes with
  another source) are scored by a task queued when the row is committed
  (`score_images`, queued by signals.py): an upload never waits for the classifier.

The score is stored on the image (`nsfw_score`); the flag is raised by
`Image.record_nsfw_score`, never lowered, and never where a curator set or cleared the
flag by hand (`nsfw_by_hand`): a person's word wins. Why this lives in generation, not in
albums: the threshold is a site setting, and albums may not import generation (the
direction of dependencies, docs/architecture.md).

The classifier is optional and must never break what it watches: a model that cannot be
loaded or a picture it cannot score is logged and marks nothing; the job goes on.
"""

import io
import logging

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

from albums.models import Image

from .models import SiteSettings

log = logging.getLogger(__name__)


def classifier_on():
    return bool(settings.IMAGINEER_NSFW_MODEL)


def score_pictures(pictures):
    """The classifier's scores of PIL pictures, in order; None when it is off or failed
    (the failure is logged: nothing is flagged, and the caller goes on)."""
    if not classifier_on() or not pictures:
        return None
    try:
        from .engine.nsfw import get_scorer

        scorer = get_scorer(
            settings.IMAGINEER_NSFW_MODEL, local_files_only=not settings.IMAGINEER_HUB_DOWNLOADS
        )
        return scorer.score(pictures)
    except Exception:
        log.exception(
            "the NSFW classifier failed: the images are not scored",
            extra={"model": settings.IMAGINEER_NSFW_MODEL},
        )
        return None


def record_scores(images, scores):
    """Store each image's score and flag it by the site's threshold (Image.record_nsfw_score)."""
    threshold = SiteSettings.current().nsfw_threshold
    for image, score in zip(images, scores, strict=True):
        image.record_nsfw_score(score, threshold=threshold)


def queue_scoring(image):
    """Score an ingested image on a worker once its row is committed (signals.py)."""
    if classifier_on():
        transaction.on_commit(
            lambda: async_task("generation.nsfw.score_images", [image.pk], group="nsfw")
        )


def score_images(image_ids):
    """The worker task: score the images (their thumbnails: a classifier looks at a few
    hundred pixels) and record the scores. Images deleted meanwhile are skipped."""
    images = list(Image.objects.filter(pk__in=image_ids).order_by("pk"))
    pictures, scored = [], []
    for image in images:
        try:
            pictures.append(open_thumbnail(image))
            scored.append(image)
        except Exception:
            log.exception("cannot read the image to score it", extra={"image": image.pk})
    scores = score_pictures(pictures)
    if scores is None:
        return f"nsfw: {len(images)} images not scored"
    record_scores(scored, scores)
    return f"nsfw: scored {len(scored)} images"


def open_thumbnail(image):
    from PIL import Image as PILImage

    with image.thumbnail.open("rb") as stored:
        picture = PILImage.open(io.BytesIO(stored.read()))
        picture.load()
    return picture
