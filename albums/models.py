"""Images, albums and labels: every image the platform knows, and how people curate them.

Who may see what (the one place it is decided):

- Curators (users with `albums.curate_all`: editors and admins) see and curate everything.
- Other signed-in users see public albums and their own albums; they see the images they
  created and the images in the albums they may see.
- Anonymous visitors see public albums and their images, read-only, only when
  IMAGINEER_PUBLIC_GALLERY is on; otherwise nothing.

An Image belongs to whoever stored it (`created_by`): the same bytes stored by two people
are two images, each with its own prompt, caption, flags and albums, and at most one per
owner (`image_once_per_owner`). Their files live once in default_storage under names made
from the sha256, shared by those images (see ingest.py); deleting an Image row, however it
is deleted, removes the files once no other image names them (signals.py).
"""

import secrets
import string
from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max, OuterRef, Q, Subquery, Value
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.text import slugify

from accounts.limits import counts_toward_quota
from accounts.models import NsfwPreference, nsfw_mode
from workers.models import LeasedWork, LeasedWorkQuerySet

CURATE_ALL = "albums.curate_all"


def unique_slug(instance, text, *, fallback):
    """A slug made from `text` that no other row of the instance's model holds: "seaside",
    else "seaside-2", "seaside-3"... (`fallback` when `text` has no letters or digits).
    For rows everyone sees (prompt sets); albums, which may be private, use album_slug."""
    model = type(instance)
    room = model._meta.get_field("slug").max_length - 10  # for the "-n"
    base = slugify(text)[:room] or fallback
    taken = set(
        model._default_manager.filter(slug__startswith=base).exclude(pk=instance.pk)
        .values_list("slug", flat=True)
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


SLUG_SUFFIX_CHARACTERS = string.ascii_lowercase + string.digits


def slug_suffix():
    return "".join(secrets.choice(SLUG_SUFFIX_CHARACTERS) for _ in range(6))


def album_slug(name):
    """A new album's slug: its name and a random suffix, "seaside-k3x9qa". Unlike
    unique_slug's "seaside-2", it tells nothing of other albums: that one would say that
    somebody, maybe in a private album, had used the name first."""
    room = Album._meta.get_field("slug").max_length - 10
    base = slugify(name)[:room] or "album"
    while True:
        slug = f"{base}-{slug_suffix()}"
        if not Album.objects.filter(slug=slug).exists():  # a random name taken: draw again
            return slug


def is_curator(user):
    return user.is_authenticated and user.has_perm(CURATE_ALL)


def album_visibility(user, prefix=""):
    """The albums a non-curator sees, as a Q (`prefix` leads to the album from another
    model), or None when they see none."""
    public = Q(**{f"{prefix}visibility": Album.Visibility.PUBLIC})
    if user.is_authenticated:
        return public | Q(**{f"{prefix}owner": user})
    if settings.IMAGINEER_PUBLIC_GALLERY:
        return public
    return None


class ImageQuerySet(models.QuerySet):
    def visible_to(self, user):
        if is_curator(user):
            return self.all()
        albums = album_visibility(user, prefix="album__")
        if albums is None:
            return self.none()
        # A join to the album, not `album__in=<albums subquery>`: with that, SQLite probes
        # the (album, image) index once per visible album for every image: 11 s instead
        # of 0.1 s to count 100,000 images (bench/albums_pages.py). And a scalar subquery
        # (LIMIT 1), not EXISTS: PostgreSQL turns an EXISTS into a hash of every visible
        # album entry, built on each request before the first row (700 ms at a million
        # images), where a page of the newest images needs a few dozen probes
        # (bench/library_scale.py).
        in_visible_album = Exact(Subquery(
            AlbumImage.objects.filter(albums, image=OuterRef("pk")).order_by()  # any one
            .values(one=Value(1))[:1]), 1)
        if user.is_authenticated:
            return self.filter(in_visible_album | Q(created_by=user))
        return self.filter(in_visible_album)

    def flag_nsfw(self, flag):
        """A person (a curator) flags or clears these images: their word is final, so the
        classifier no longer changes the flag (`nsfw_by_hand`). Returns how many."""
        return self.update(nsfw=bool(flag), nsfw_by_hand=True)

    def shown_in_lists_to(self, user):
        """The images of a list (API, pages, search) as `user` wants them: NSFW ones left
        out for those who chose to hide them (accounts.User.nsfw_preference). Only lists:
        an image opened by its id is shown (blurred) whatever the choice."""
        if nsfw_mode(user) == NsfwPreference.HIDE:
            return self.filter(nsfw=False)
        return self

    def captionable_by(self, user):
        """The images whose caption `user`'s own work may write (an import, an automatic
        caption run): curators' any image, other users' their own only. Adding a visible
        image to one's album gives no say over its caption: captions feed training, and a
        stranger's would poison its owner's LoRAs."""
        if user is not None and is_curator(user):
            return self.all()
        if user is not None and user.is_authenticated:
            return self.filter(created_by=user)
        return self.none()

    def with_caption(self):
        """Annotate `caption_text`, the newest caption, in the same query (no N+1)."""
        if "caption_text" in self.query.annotations:
            return self
        newest = Label.objects.filter(image=OuterRef("pk"), kind=Label.Kind.CAPTION).order_by(
            "-created_at", "-id"
        )
        return self.annotate(caption_text=Subquery(newest.values("text")[:1]))

    def captioned(self, flag=True):
        """Images whose caption is (flag) or is not (not flag) some text; blank counts as none."""
        has_text = Q(caption_text__isnull=False) & ~Q(caption_text="")
        return self.with_caption().filter(has_text if flag else ~has_text)


@counts_toward_quota(owner="created_by", size="size_bytes")
class Image(models.Model):
    class Source(models.TextChoices):
        GENERATED = "generated"
        UPLOAD = "upload"
        IMPORT = "import"
        SCRAPE = "scrape"

    class Format(models.TextChoices):
        PNG = "PNG"
        JPEG = "JPEG"
        WEBP = "WEBP"

    file = models.FileField(max_length=255)
    thumbnail = models.FileField(max_length=255, help_text="WebP, 384 px on the long side")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    format = models.CharField(max_length=8, choices=Format.choices)
    sha256 = models.CharField(max_length=64, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    nsfw = models.BooleanField("NSFW", default=False)
    nsfw_score = models.FloatField(
        "NSFW score", null=True, blank=True, editable=False,
        help_text="The NSFW classifier's probability that the image is not safe for work "
                  "(IMAGINEER_NSFW_MODEL); empty: not scored.")
    nsfw_by_hand = models.BooleanField(
        "NSFW set by hand", default=False, editable=False,
        help_text="A curator set or cleared the flag: the classifier no longer changes it.")
    source_url = models.URLField(max_length=2000, blank=True,
                                 help_text="Where a scraped image was fetched from.")
    source_page = models.URLField(max_length=2000, blank=True,
                                  help_text="The page a scraped image was found on.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="images",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The lists' order, read backwards from the cursor (core/pagination.py).
        indexes = [models.Index(fields=["created_at", "id"], name="image_newest")]
        constraints = [
            # One image of the same bytes per owner; other owners have their own (ingest.py).
            models.UniqueConstraint(fields=["created_by", "sha256"],
                                    name="image_once_per_owner"),
        ]

    def __str__(self):
        return f"Image {self.pk} ({self.width}x{self.height} {self.format})"

    @property
    def caption(self):
        """The text of the newest caption label, or ""."""
        if "caption_text" in self.__dict__:  # annotated by with_caption()
            return self.caption_text or ""
        label = self.labels.filter(kind=Label.Kind.CAPTION).order_by("-created_at", "-id").first()
        return label.text if label else ""

    def set_caption(self, text, *, by=None, source=None):
        """Make `text` the caption: a new caption label, so earlier ones stay as history."""
        label = self.labels.create(
            text=text,
            kind=Label.Kind.CAPTION,
            source=source or Label.Source.MANUAL,
            created_by=by,
        )
        self.caption_text = text
        return label

    @transaction.atomic
    def set_auto_caption(self, text, *, by=None, source=None):
        """Make `text` the caption unless the image has one by now (a person wrote it while
        a worker was captioning): the image's row is locked, so a caption written at the
        same moment waits. Returns the label, or None when the image kept its caption."""
        Image.objects.select_for_update().filter(pk=self.pk).first()
        if Image.objects.filter(pk=self.pk).captioned().exists():
            return None
        return self.set_caption(text, by=by, source=source or Label.Source.AUTO)

    def set_nsfw(self, flag):
        """A curator's flag (the API, the admin): see ImageQuerySet.flag_nsfw."""
        Image.objects.filter(pk=self.pk).flag_nsfw(flag)
        self.nsfw, self.nsfw_by_hand = bool(flag), True

    def record_nsfw_score(self, score, *, threshold):
        """Store the classifier's score, and flag the image when the score reaches the
        site's threshold (SiteSettings.nsfw_threshold), unless a person set the flag by
        hand: theirs wins, before or after. The classifier only ever raises the flag. One
        conditional UPDATE, so a person's flag written at the same moment is never undone."""
        flag = models.Case(models.When(nsfw_by_hand=False, then=Value(True)),
                           default=models.F("nsfw"))
        changes = {"nsfw_score": score}
        if score >= threshold:
            changes["nsfw"] = flag
        Image.objects.filter(pk=self.pk).update(**changes)
        self.refresh_from_db(fields=["nsfw", "nsfw_score", "nsfw_by_hand"])

    def can_curate(self, user):
        """Change the caption or NSFW flag, delete: curators only (see accounts/roles.py)."""
        return is_curator(user)


class AlbumQuerySet(models.QuerySet):
    def visible_to(self, user):
        if is_curator(user):
            return self.all()
        albums = album_visibility(user)
        return self.none() if albums is None else self.filter(albums)

    def curatable_by(self, user):
        """The albums `user` may change (the queryset twin of Album.can_curate)."""
        if is_curator(user):
            return self.all()
        if user.is_authenticated:
            return self.filter(owner=user)
        return self.none()

    def with_summary(self):
        """Annotate `cover_image_id` (the cover, else the first image) and `cover_nsfw`
        (whether that image is flagged NSFW: hidden from those who chose to hide them,
        on the pages and in the API); the number of images is the album's own
        `image_count`, which the database keeps (counts.py)."""
        first = AlbumImage.objects.filter(album=OuterRef("pk")).order_by("position")
        cover = Image.objects.filter(pk=OuterRef("cover_image_id"))
        return self.annotate(
            cover_image_id=models.functions.Coalesce(
                "cover_id",
                Subquery(first.values("image_id")[:1]),
                output_field=models.BigIntegerField(),
            ),
        ).annotate(cover_nsfw=Subquery(cover.values("nsfw")[:1]))


class Album(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private"
        PUBLIC = "public"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True, blank=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="albums"
    )
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    cover = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_training_set = models.BooleanField(
        default=False, help_text="Offered as a dataset when training a LoRA."
    )
    images = models.ManyToManyField(
        Image, through="AlbumImage", related_name="albums", blank=True
    )
    image_count = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="How many images the album holds: kept by the database (albums/counts.py)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AlbumQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["updated_at", "id"], name="album_newest")]
        permissions = [("curate_all", "Can curate every album and image")]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = album_slug(self.name)
        if not self._state.adding and kwargs.get("update_fields") is None:
            # Every column but image_count, which the database keeps: this Album may have
            # been read before images were added.
            kwargs["update_fields"] = [field.name for field in self._meta.concrete_fields
                                       if not field.primary_key and field.name != "image_count"]
        super().save(*args, **kwargs)

    def can_curate(self, user):
        """Change, add or remove images, reorder, import, delete: the owner or a curator."""
        return user.is_authenticated and (self.owner_id == user.pk or is_curator(user))

    @transaction.atomic
    def add_images(self, images, by=None):
        """Append the images not yet in the album, in the order given. Returns how many."""
        Album.objects.select_for_update().filter(pk=self.pk).first()  # serialise positions
        present = set(self.entries.values_list("image_id", flat=True))
        last = self.entries.aggregate(last=Max("position"))["last"]
        position = -1 if last is None else last
        new = []
        for image in images:
            image_id = getattr(image, "pk", image)
            if image_id in present:
                continue
            present.add(image_id)
            position += 1
            new.append(AlbumImage(album=self, image_id=image_id, position=position, added_by=by))
        AlbumImage.objects.bulk_create(new)
        if new:
            self.touch()
        return len(new)

    @transaction.atomic
    def remove_images(self, images):
        """Take the images out of the album (the images themselves stay). Returns how many."""
        ids = [getattr(image, "pk", image) for image in images]
        removed, _ = self.entries.filter(image_id__in=ids).delete()
        Album.objects.filter(pk=self.pk, cover__in=ids).update(cover=None)
        if self.cover_id in ids:
            self.cover = None
        if removed:
            self.touch()
        return removed

    @transaction.atomic
    def reorder(self, image_ids):
        """Put the listed images first, in that order; the others keep their order after.

        Raises ValidationError on `image_ids` naming the ids that are repeated or, with the
        code "does_not_exist" (the API's 404), not in the album.
        """
        Album.objects.select_for_update().filter(pk=self.pk).first()
        image_ids = list(image_ids)
        repeated = sorted(i for i, times in Counter(image_ids).items() if times > 1)
        if repeated:
            raise ValidationError({"image_ids": ValidationError(
                f"repeated ids {repeated}", code="repeated")})
        entries = {entry.image_id: entry for entry in self.entries.all()}
        unknown = [i for i in image_ids if i not in entries]
        if unknown:
            raise ValidationError({"image_ids": ValidationError(
                f"ids not in this album {unknown}", code="does_not_exist")})
        listed = [entries.pop(i) for i in image_ids]
        rest = sorted(entries.values(), key=lambda entry: entry.position)
        for position, entry in enumerate(listed + rest):
            entry.position = position
        AlbumImage.objects.bulk_update(listed + rest, ["position"])
        self.touch()

    def touch(self):
        Album.objects.filter(pk=self.pk).update(updated_at=models.functions.Now())


class AlbumImage(models.Model):
    """An image's place in an album."""

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="entries")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="album_entries")
    position = models.PositiveIntegerField(default=0)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["album", "image"], name="album_image_once"),
        ]
        indexes = [models.Index(fields=["album", "position"])]

    def __str__(self):
        return f"{self.album} #{self.position}: image {self.image_id}"


class Label(models.Model):
    """Text about an image: a caption (the newest one is the image's caption) or a tag."""

    MAX_LENGTH = 10_000  # what the caption forms and the API accept

    class Kind(models.TextChoices):
        CAPTION = "caption"
        TAG = "tag"

    class Source(models.TextChoices):
        MANUAL = "manual"
        AUTO = "auto"
        IMPORT = "import"
        SCRAPED = "scraped"  # the alt text, title or figure caption of a scraped image

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="labels")
    text = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CAPTION)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["image", "kind", "-created_at"])]

    def __str__(self):
        return f"{self.kind} of image {self.image_id}: {self.text[:50]}"



class CaptionRunQuerySet(LeasedWorkQuerySet):
    def visible_to(self, user):
        """Runs over albums the user may curate; runs started in the admin: curators only."""
        if is_curator(user):
            return self.all()
        return self.filter(album__in=Album.objects.curatable_by(user))


class CaptionRun(LeasedWork):
    """One pass of automatic captioning: an album's uncaptioned images, or chosen images.

    Its status, worker, lease and attempts are LeasedWork's (workers/models.py): the
    worker task (tasks.py) takes it with start(), each image done renews the lease
    (advance), and a run whose worker died is queued again (an attempt starts over with
    the images still uncaptioned). Pages and the API read `done` of `total` as its
    progress.
    """

    noun = "caption run"

    album = models.ForeignKey(
        Album, null=True, blank=True, on_delete=models.CASCADE, related_name="caption_runs",
        help_text="Empty for a run over images chosen in the admin.",
    )
    image_ids = models.JSONField(
        default=list, blank=True,
        help_text="The images chosen in the admin (a run over an album: empty).",
    )
    total = models.PositiveIntegerField(default=0, help_text="Images to caption.")
    done = models.PositiveIntegerField(
        default=0, help_text="Images done so far, captioned or empty."
    )
    empty = models.PositiveIntegerField(
        default=0, help_text="Images the model found no words for: left uncaptioned."
    )
    failed = models.PositiveIntegerField(
        default=0, help_text="Images the backend could not caption (named in the error); "
                             "the run went on without them."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CaptionRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Caption run {self.pk} ({self.status}, {self.done}/{self.total})"

    @property
    def summary(self):
        """One line for people: the album page and the status API show it."""
        if self.status == self.Status.QUEUED:
            return f"Queued: {self.total} images to caption."
        if self.status == self.Status.RUNNING:
            return f"Captioning: {self.done} of {self.total} images."
        if self.status == self.Status.FAILED:
            return f"Failed after {self.done} of {self.total} images: {self.error}"
        if self.status == self.Status.CANCELLED:
            return f"Cancelled after {self.done} of {self.total} images."
        text = f"Done: captioned {self.done - self.empty - self.failed} of {self.total} images"
        if self.empty:
            text += f"; the model found no words for {self.empty}, left uncaptioned"
        if self.failed:
            text += f"; {self.failed} could not be captioned: {self.error}"
        return text + "."

    # State changes beyond LeasedWork's (start, beat, fail, cancel, requeue): each a
    # conditional UPDATE that the row's status, and the worker holding it, decide.

    def start(self, worker, *, total):
        """A worker takes the queued run: `total` images to caption (an attempt after a
        dead worker's starts over). False when it is not queued."""
        return super().start(worker, total=total, done=0, empty=0, failed=0, progress=0.0)

    MAX_FAILURES_NAMED = 20  # in `error`; `failed` counts them all

    def advance(self, *, empty=False, failure=None):
        """One more image done (`empty`: the model gave no words, nothing was stored;
        `failure`: why the backend could not caption it, a line added to the error);
        renews the lease. False once the run is no longer this worker's (cancelled, or
        given to another worker)."""
        changes = {"done": models.F("done") + 1}
        if empty:
            changes["empty"] = models.F("empty") + 1
        if failure:
            changes["failed"] = models.F("failed") + 1
            if self.failed < self.MAX_FAILURES_NAMED:
                changes["error"] = "\n".join(filter(None, [self.error, failure]))[:2000]
        return self._transition([self.Status.RUNNING], heartbeat_at=timezone.now(),
                                progress=min((self.done + 1) / max(self.total, 1), 1.0),
                                **changes)

    def succeed(self):
        return self._transition([self.Status.RUNNING], status=self.Status.SUCCEEDED,
                                progress=1.0, finished_at=timezone.now())


class ScrapeRunQuerySet(LeasedWorkQuerySet):
    def visible_to(self, user):
        """A user's own runs only, whatever their role: a run names the sites somebody
        visits (the admin, for operators, lists them all)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(created_by=user)


class ScrapeRun(LeasedWork):
    """A scrape of web pages into an album (albums/scrape.py runs it on the workers).

    Its status, worker, lease and attempts are LeasedWork's. What is left to visit (the
    frontier) and what was seen are stored on the row after every page and image, in the
    transaction that stores the image, so a run whose worker died is queued again and
    goes on where it stopped, fetching nothing twice.
    """

    noun = "scrape run"

    start_url = models.URLField(max_length=2000)
    depth = models.PositiveSmallIntegerField(default=1, help_text="Links followed from the "
                                             "start page: 0 (that page only) to 3.")
    max_images = models.PositiveIntegerField(default=100)
    same_site = models.BooleanField(default=True, help_text="Follow links on the start "
                                    "URL's host only (images may come from anywhere).")
    min_width = models.PositiveIntegerField(default=0)
    min_height = models.PositiveIntegerField(default=0)
    caption = models.BooleanField(default=False, help_text="Caption the album's uncaptioned "
                                  "images with the captioning backend when the scrape ends.")
    album = models.ForeignKey(Album, null=True, on_delete=models.SET_NULL,
                              related_name="scrape_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="scrape_runs")
    created_at = models.DateTimeField(auto_now_add=True)

    frontier = models.JSONField(default=list, blank=True,
                                help_text="[url, depth] of the pages left to visit.")
    seen = models.JSONField(default=list, blank=True,
                            help_text="URLs of pages and images queued or done.")
    pages_visited = models.PositiveIntegerField(default=0)
    images_found = models.PositiveIntegerField(default=0)
    images_kept = models.PositiveIntegerField(default=0)
    refused = models.JSONField(default=dict, blank=True,
                               help_text="Pages and images not taken, counted by reason.")
    refusals = models.JSONField(default=list, blank=True,
                                help_text="The last refusals: [url, reason, message].")
    caption_run = models.ForeignKey(CaptionRun, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    objects = ScrapeRunQuerySet.as_manager()

    MAX_REFUSALS_KEPT = 50

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Scrape run {self.pk} ({self.status}, {self.start_url})"

    @property
    def summary(self):
        """One line for people: the run page and the API show it."""
        counts = (f"{self.pages_visited} pages visited, {self.images_found} images found, "
                  f"{self.images_kept} kept")
        refused = sum(self.refused.values())
        if refused:
            counts += f", {refused} refused"
        text = {
            self.Status.QUEUED: "Queued",
            self.Status.RUNNING: "Scraping",
            self.Status.SUCCEEDED: "Done",
            self.Status.CANCELLED: "Cancelled",
            self.Status.FAILED: "Failed",
        }[self.status]
        text = f"{text}: {counts}."
        if self.status == self.Status.FAILED:
            text += f" {self.error}"
        return text

    def start(self, worker):
        """A worker takes the queued run; the first attempt sets out from the start URL,
        a later one goes on with the stored frontier. False when it is not queued."""
        fields = {}
        if not self.seen:
            fields = {"frontier": [[self.start_url, 0]], "seen": [self.start_url]}
        return super().start(worker, **fields)

    def record(self, *, frontier, seen, progress, refusal=None, **counts):
        """Store the run's state after a page or an image (in the caller's transaction):
        `counts` are increments of pages_visited, images_found, images_kept; `refusal`
        is (url, reason, message). Renews the lease; False once the run is no longer
        this worker's (cancelled, or given to another)."""
        fields = {name: models.F(name) + n for name, n in counts.items() if n}
        if refusal is not None:
            url, reason, message = refusal
            refused = dict(self.refused)
            refused[reason] = refused.get(reason, 0) + 1
            fields["refused"] = refused
            fields["refusals"] = (self.refusals + [[url, reason, message[:500]]])[
                -self.MAX_REFUSALS_KEPT:]
        return self._transition([self.Status.RUNNING], heartbeat_at=timezone.now(),
                                frontier=frontier, seen=seen, progress=progress, **fields)

    def succeed(self, **fields):
        return self._transition([self.Status.RUNNING], status=self.Status.SUCCEEDED,
                                progress=1.0, finished_at=timezone.now(), frontier=[],
                                **fields)
