"""Scrape runs: web pages into an album, on the workers.

Starting: the scrape page (albums/views.py), `POST /api/scrape-runs/` and nothing else
call `validate_scrape(data, user)` (the one place for the fields' rules: a ValidationError
naming each field and its rule, a 400 in the API) and `start_scrape(user, cleaned)`, which
creates the target album when asked to (a new, private album of the starter's) and the
ScrapeRun, and queues the task on commit. Editors and admins may scrape
(`albums.add_scraperun`); a run is its starter's alone.

Running (`run_scrape`, a django-q2 task): the run is taken with a conditional UPDATE
(ScrapeRun is LeasedWork); pages are visited breadth first from the stored frontier, up to
`depth` links from the start page (on the start URL's host when `same_site`), and their
images fetched with albums/fetch.py's `Fetcher` (timeouts, a byte limit, our user agent,
robots.txt, a delay per host, the SSRF guard) until `max_images` are kept. Each image goes
through albums.ingest.store_image like an upload (type, size and pixel limits, polyglots,
dedup per owner), then must be at least min_width x min_height; it joins the album with
its source URL and page, and the text its page gave it (alt, title, figure caption) as its
first caption, marked "scraped", only while it has none. The image, its album entry, its
caption and the run's new state (frontier, seen, counts) are one transaction, so a run
resumed after its worker died (`reclaim_stale_scrape_runs`, at a worker's start and in
housekeeping) goes on where it stopped. A cancel is seen after the next page or image.
When the run ends and `caption` was asked, a caption run (the configured backend) takes
the album.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_q.tasks import async_task

from accounts.limits import check_storage, lock_user, throttle
from core.errors import NO_SUCH_ROW
from workers.leases import Heartbeat, lease_interval, reclaim, worker_name

from .fetch import Fetcher, FetchPolicy, Refused, check_address, parse_page, same_site
from .ingest import ImageRejected, atomic_ingest, store_image
from .models import Album, Image, Label, ScrapeRun

log = logging.getLogger(__name__)

RULES = {"depth": (0, 3, 1), "max_images": (1, 1000, 100), "min_width": (0, 10000, 0),
         "min_height": (0, 10000, 0)}  # field: (least, most, default)
FIELDS = ["start_url", "depth", "max_images", "same_site", "min_width", "min_height",
          "album", "album_name", "caption"]
PAGE_TYPES = ("text/html", "application/xhtml+xml")


def validate_scrape(data, user):
    """The cleaned fields of a scrape request, or a ValidationError naming each bad field
    and its rule. `data`: a dict (JSON body or form) of FIELDS."""
    errors, cleaned = {}, {}
    if not hasattr(data, "get") or not hasattr(data, "keys"):
        raise ValidationError({"non_field_errors": "A JSON object of the run's fields."})
    unknown = sorted(set(map(str, data.keys())) - set(FIELDS))
    for name in unknown:
        errors[name] = f"Unknown field. Allowed: {', '.join(FIELDS)}."

    url = str(data.get("start_url") or "").strip()
    try:
        cleaned["start_url"] = check_start_url(url)
    except ValidationError as exc:
        errors["start_url"] = exc.messages[0]

    for name, (least, most, default) in RULES.items():
        value = data.get(name)
        if value in (None, ""):
            cleaned[name] = default
            continue
        try:
            number = int(value)
            if isinstance(value, bool) or str(number) != str(value).strip():
                raise ValueError
        except (TypeError, ValueError):
            errors[name] = f"A whole number from {least} to {most}."
            continue
        if not least <= number <= most:
            errors[name] = f"A whole number from {least} to {most}; got {number}."
            continue
        cleaned[name] = number

    for name, default in (("same_site", True), ("caption", False)):
        value = data.get(name)
        if value in (None, ""):
            cleaned[name] = default
        elif isinstance(value, bool):
            cleaned[name] = value
        elif str(value).lower() in ("true", "on", "1", "yes", "false", "off", "0", "no"):
            cleaned[name] = str(value).lower() in ("true", "on", "1", "yes")
        else:
            errors[name] = "true or false."

    album, name = data.get("album"), str(data.get("album_name") or "").strip()
    if album not in (None, "") and name:
        errors["album"] = "Give an album or a new album's name (album_name), not both."
    elif album not in (None, ""):
        try:
            cleaned["album"] = Album.objects.curatable_by(user).get(pk=int(album))
        except (TypeError, ValueError):
            errors["album"] = "No album of yours has this id."
        except (Album.DoesNotExist, OverflowError):  # an id naming none: 404 in the API
            errors["album"] = ValidationError("No album of yours has this id.",
                                              code=NO_SUCH_ROW)
    elif name:
        if len(name) > 200:
            errors["album_name"] = "At most 200 characters."
        cleaned["album_name"] = name
    else:
        errors["album"] = "Give an album's id, or album_name for a new album."
    if errors:
        raise ValidationError(errors)
    return cleaned


def check_start_url(url):
    """An http(s) URL naming a host; a literal private address is refused at once (names
    are resolved, and checked, by the worker before each request)."""
    if not url:
        raise ValidationError("Required: the http or https URL of the first page.")
    if len(url) > 2000:
        raise ValidationError("At most 2000 characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise ValidationError("Not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("An http or https URL with a host, like https://example.org/.")
    try:
        check_address(parts.hostname, allow_loopback=settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK)
    except ValueError:
        pass  # a name, not an address
    except Refused as exc:
        raise ValidationError(f"Not a public address: {exc}.") from None
    return url


def start_scrape(user, cleaned):
    """Create the run (and its new album) and queue its task on commit. Counted against the
    user's throttle ("scraping"), and refused while they are at their storage quota (the
    run will store images): LimitExceeded."""
    throttle(user, "scraping")
    with transaction.atomic():
        lock_user(user)
        check_storage(user)
        album = cleaned.get("album")
        if album is None:
            album = Album.objects.create(name=cleaned["album_name"], owner=user)
        run = ScrapeRun.objects.create(
            created_by=user, album=album,
            **{name: cleaned[name] for name in ("start_url", "depth", "max_images", "same_site",
                                                "min_width", "min_height", "caption")})
        transaction.on_commit(lambda: enqueue_run(run))
    return run


def enqueue_run(run):
    async_task("albums.scrape.run_scrape", run.pk)


def fetch_policy():
    return FetchPolicy(
        user_agent=settings.IMAGINEER_SCRAPE_USER_AGENT,
        max_bytes=settings.IMAGINEER_SCRAPE_MAX_BYTES,
        timeout=settings.IMAGINEER_SCRAPE_TIMEOUT,
        host_delay=settings.IMAGINEER_SCRAPE_HOST_DELAY,
        allow_loopback=settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK,
    )


class Stop(Exception):
    """The run is no longer this worker's (cancelled, or given to another)."""


class Scrape:
    """One attempt at a run: its state in memory, stored after every page and image."""

    def __init__(self, run, fetcher):
        self.run, self.fetcher = run, fetcher
        self.frontier = [list(entry) for entry in run.frontier]
        self.seen = list(run.seen)
        self.seen_set = set(self.seen)

    def see(self, url):
        if url in self.seen_set:
            return False
        self.seen_set.add(url)
        self.seen.append(url)
        return True

    def record(self, **changes):
        run = self.run
        kept = run.images_kept + changes.get("images_kept", 0)
        if not run.record(frontier=self.frontier, seen=self.seen,
                          progress=min(kept / run.max_images, 1.0), **changes):
            raise Stop()

    def go(self):
        run = self.run
        while self.frontier and run.images_kept < run.max_images:
            url, depth = self.frontier[0]
            try:
                page = self.fetcher.get(url)
                if page.content_type not in PAGE_TYPES:
                    raise Refused("not-a-page", f"{url}: {page.content_type or 'no type'}, "
                                                "not an HTML page")
            except Refused as exc:
                self.frontier.pop(0)
                self.record(refusal=(url, exc.reason, str(exc)))
                continue
            found = parse_page(page.body.decode("utf-8", "replace"), page.url)
            for image in found.images:
                if run.images_kept >= run.max_images:
                    break
                if self.see(image.url):
                    self.take_image(image, page.url)
            self.frontier.pop(0)
            if depth < run.depth:
                for link in found.links:
                    if urlsplit(link).scheme not in ("http", "https"):
                        continue
                    if run.same_site and not same_site(link, run.start_url):
                        continue
                    if self.see(link):
                        self.frontier.append([link, depth + 1])
            self.record(pages_visited=1)

    def take_image(self, found, page_url):
        """Fetch one image and store it in the album with its text, with the run's state."""
        run = self.run
        try:
            response = self.fetcher.get(found.url)
            with atomic_ingest():
                image, _ = store_image(
                    response.body, filename=urlsplit(found.url).path.rsplit("/", 1)[-1]
                    or "image", source=Image.Source.SCRAPE, created_by=run.created_by)
                if image.width < run.min_width or image.height < run.min_height:
                    raise Refused("too-small", f"{found.url}: {image.width}x{image.height}, "
                                  f"smaller than {run.min_width}x{run.min_height}")
                if not image.source_url:
                    Image.objects.filter(pk=image.pk).update(source_url=found.url,
                                                             source_page=page_url)
                if found.text:
                    image.set_auto_caption(found.text[:Label.MAX_LENGTH], by=run.created_by,
                                           source=Label.Source.SCRAPED)
                if run.album_id is not None:
                    Album(pk=run.album_id).add_images([image], by=run.created_by)
                self.record(images_found=1, images_kept=1)
        except ImageRejected as exc:
            self.record(images_found=1, refusal=(found.url, "not-accepted", str(exc)))
        except Refused as exc:
            self.record(images_found=1, refusal=(found.url, exc.reason, str(exc)))


def run_scrape(run_id):
    """The task: take the run and scrape (see the module docstring)."""
    run = ScrapeRun.objects.get(pk=run_id)
    worker = worker_name()
    if not run.start(worker):
        return f"scrape run {run.pk} is not queued"
    try:
        with Heartbeat(lambda: run.beat(worker), lease_interval()):
            Scrape(run, Fetcher(fetch_policy())).go()
    except Stop:
        return f"scrape run {run.pk} is no longer this worker's"
    except Exception as exc:
        log.exception("scrape run failed", extra={"run": run.pk})
        run.fail(f"{exc.__class__.__name__}: {exc}")
        raise
    caption_run = caption_after(run)
    run.succeed(caption_run=caption_run)
    return f"scrape run {run.pk} succeeded"


def caption_after(run):
    """The caption run over the album when the run asked for one and captioning is on."""
    from .tasks import captioning_off, start_caption_run

    if not run.caption or run.album is None or captioning_off():
        return None
    return start_caption_run(run.album, by=run.created_by)


def reclaim_stale_scrape_runs():
    """Give back running scrape runs whose worker is gone; the next attempt goes on from
    the stored frontier. After too many attempts they fail."""
    return reclaim(ScrapeRun.objects.all(), requeued=enqueue_run)
