"""The role matrix: every endpoint of the URL conf, called by every actor, with the status
each must get.

Actors: nobody (anonymous), vera (a viewer), otto (another viewer), an editor and an
admin. The objects in the URLs belong to vera, so otto's column is what a viewer gets for
another user's things. Refusals: 401 for an anonymous API call, a redirect to the sign-in
page (SIGN_IN) for an anonymous page, 403 for a role that lacks the permission, 404 for
what the caller may not see (another user's job, album, image, batch, run...), as if it
did not exist.

Each call runs in a transaction that is rolled back, so every actor meets the same world
and an unsafe call (delete, cancel, retry, upload...) disturbs no later one. Submitted
work is only queued: the queue is written on commit, which never comes; no worker runs.

The URL conf is walked and a route with no row fails
`test_it_has_a_row_for_every_route_and_method`: a new endpoint needs a row saying who may
call it. Were a route to get a `.json` twin (a `format` argument; the API router makes
none since the walk found them answering 500), its rows would run on the twin too.

Adding an endpoint: one line in ROWS, and an object in `world` if it needs a new kind.
"""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Invite
from albums.models import Album, CaptionRun, ScrapeRun
from albums.tests.images import make_image, png_bytes
from generation.models import Batch, Job, ModelVersion, PromptSet
from imagineer.testing import url_routes
from training.models import TrainingRun

ACTORS = ["anonymous", "viewer", "other viewer", "editor", "admin"]
SIGN_IN = "sign-in"  # a redirect to the sign-in page


# Payloads: a dict (JSON for the API, a form for pages), or a function of the world giving
# one, called afresh for each call (a file is read once). A file makes it multipart.

def upload(world):
    return {"file": SimpleUploadedFile("new.png", png_bytes(color=(1, 2, 3)), "image/png")}


def csv_items(world):
    return {"file": SimpleUploadedFile("items.csv", b"sign\nleo\nvirgo\n", "text/csv")}


def image_ids(world):
    return {"image_ids": [world.image.pk]}


def training(world):
    return {"album": world.album.pk, "name": "holiday-lora"}


def veras_credentials(world):
    from conftest import PASSWORD

    return {"username": world.users["viewer"].username, "password": PASSWORD}


def to_public_album(world):
    return {"album": world.public_album.pk}


def job_on_editors_model(world):
    return {**JOB, "model": world.editors_model.pk}


def job_with_admins_lora(world):
    return {**JOB, "loras": [{"id": world.admins_lora.pk}]}


NEW_ALBUM = {"name": "New album", "visibility": "private"}
DESCRIBE = {"description": "changed"}
NSFW = {"nsfw": True}
HIDE = {"nsfw_preference": "hide"}
JOB = {"prompt": "a castle", "width": 64, "height": 64, "steps": 4}
BATCH = {"set": "signs"}
NEW_SET = {"name": "New set", "prompt_template": "a {thing}"}
SET = {"name": "Signs", "prompt_template": "the sign of {sign}"}
NEW_MODEL = {"name": "other", "kind": "base", "source": "example/other"}
MODEL = {"name": "spare", "kind": "base", "source": "example/spare"}
GENERATE = {"prompt": "a castle", "size": "64x64", "steps": "4", "scheduler": "pndm"}
THEME = {"theme": "gold"}
CAPTION = {"text": "a red square"}
TOKEN = {"action": "create"}
NEW_INVITE = {"email": "guest@example.com"}
SCRAPE = {"start_url": "https://example.org/", "album_name": "Found"}
TRAIN_FORM = {"name": "holiday-lora", "steps": 10, "rank": 4, "alpha": 4,
              "learning_rate": 1e-4, "resolution": 64, "batch_size": 1,
              "gradient_accumulation": 1, "checkpoint_every": 0}

# One row per (method, URL name, object): the status for each of ACTORS. The object is a
# name in the `world` fixture; its pk or slug fills the URL.
ROWS = [
    # method  URL name                   object         payload     anon  vera otto edit admin
    # health: no worker runs here, so "workers" fails it for everyone alike
    ("GET",    "api_health",              None,          None,       503, 503, 503, 503, 503),
    ("GET",    "api-root",                None,          None,       401, 200, 200, 200, 200),
    ("GET",    "api_schema",              None,          None,       200, 200, 200, 200, 200),
    ("GET",    "api_docs",                None,          None,       200, 200, 200, 200, 200),
    # a token for whoever shows the credentials, signed in or not
    ("POST",   "api_obtain_token",        None, veras_credentials,   200, 200, 200, 200, 200),
    ("GET",    "api_config",              None,          None,       401, 200, 200, 200, 200),
    ("PATCH",  "api_config",              None,    {"default_steps": 30}, 401, 403, 403, 403, 200),
    ("PATCH",  "api_config",              None,  {"nsfw_threshold": 0.5}, 401, 403, 403, 403, 200),
    # off until IMAGINEER_METRICS_TOKEN is set (test_metrics checks the bearer token)
    ("GET",    "metrics",                 None,          None,       404, 404, 404, 404, 404),
    # images
    ("GET",    "image-list",              None,          None,       401, 200, 200, 200, 200),
    ("POST",   "image-list",              None,          upload,     401, 201, 201, 201, 201),
    ("GET",    "image-detail",            "image",       None,       401, 200, 404, 200, 200),
    ("PUT",    "image-detail",            "image",       NSFW,       401, 405, 405, 405, 405),
    ("PATCH",  "image-detail",            "image",       NSFW,       401, 403, 403, 200, 200),
    ("DELETE", "image-detail",            "image",       None,       401, 403, 403, 204, 204),
    # albums
    ("GET",    "album-list",              None,          None,       401, 200, 200, 200, 200),
    ("POST",   "album-list",              None,          NEW_ALBUM,  401, 201, 201, 201, 201),
    ("GET",    "album-detail",            "album",       None,       401, 200, 404, 200, 200),
    ("GET",    "album-detail",            "public_album", None,      401, 200, 200, 200, 200),
    ("PUT",    "album-detail",            "album",       NEW_ALBUM,  401, 405, 405, 405, 405),
    ("PATCH",  "album-detail",            "album",       DESCRIBE,   401, 200, 404, 200, 200),
    ("PATCH",  "album-detail",            "public_album", DESCRIBE,  401, 200, 403, 200, 200),
    ("DELETE", "album-detail",            "album",       None,       401, 204, 404, 204, 204),
    ("DELETE", "album-detail",            "public_album", None,      401, 204, 403, 204, 204),
    ("GET",    "album-export",            "album",       None,       401, 200, 404, 200, 200),
    ("POST",   "album-images",            "album",       image_ids,  401, 200, 404, 200, 200),
    ("POST",   "album-images",            "public_album", image_ids, 401, 200, 403, 200, 200),
    ("DELETE", "album-images",            "album",       image_ids,  401, 200, 404, 200, 200),
    ("PATCH",  "album-order",             "album",       image_ids,  401, 200, 404, 200, 200),
    ("POST",   "album-import-dataset",    "album",       upload,     401, 201, 404, 201, 201),
    ("POST",   "album-caption",           "album",       None,       401, 202, 404, 202, 202),
    ("POST",   "album-caption",           "public_album", None,      401, 202, 403, 202, 202),
    ("GET",    "captionrun-detail",       "caption_run", None,       401, 200, 404, 200, 200),
    # scrape runs: editors and admins start them; each sees only their own (vera's run is
    # one from before she lost the editor role)
    ("GET",    "scraperun-list",          None,          None,       401, 200, 200, 200, 200),
    ("POST",   "scraperun-list",          None,          SCRAPE,     401, 403, 403, 201, 201),
    ("GET",    "scraperun-detail",        "scrape_run",  None,       401, 200, 404, 404, 404),
    ("GET",    "scraperun-detail",        "editors_scrape", None,    401, 404, 404, 200, 404),
    ("POST",   "scraperun-cancel",        "scrape_run",  None,       401, 403, 403, 404, 404),
    ("POST",   "scraperun-cancel",        "editors_scrape", None,    401, 403, 403, 200, 404),
    # jobs and batches
    ("GET",    "job-list",                None,          None,       401, 200, 200, 200, 200),
    ("POST",   "job-list",                None,          JOB,        401, 201, 201, 201, 201),
    ("GET",    "job-detail",              "job",         None,       401, 200, 404, 200, 200),
    ("POST",   "job-cancel",              "job",         None,       401, 200, 404, 200, 200),
    ("POST",   "job-retry",               "job",         None,       401, 201, 404, 201, 201),
    ("POST",   "job-remix",               "job",         None,       401, 201, 404, 201, 201),
    ("GET",    "batch-list",              None,          None,       401, 200, 200, 200, 200),
    ("POST",   "batch-list",              None,          BATCH,      401, 403, 403, 201, 201),
    ("GET",    "batch-detail",            "batch",       None,       401, 200, 404, 200, 200),
    ("POST",   "batch-cancel",            "batch",       None,       401, 200, 404, 200, 200),
    # prompt sets
    ("GET",    "promptset-list",          None,          None,       401, 200, 200, 200, 200),
    ("POST",   "promptset-list",          None,          NEW_SET,    401, 403, 403, 201, 201),
    ("GET",    "promptset-detail",        "prompt_set",  None,       401, 200, 200, 200, 200),
    ("PUT",    "promptset-detail",        "prompt_set",  SET,        401, 403, 403, 200, 200),
    ("PATCH",  "promptset-detail",        "prompt_set",  DESCRIBE,   401, 403, 403, 200, 200),
    ("DELETE", "promptset-detail",        "spare_set",   None,       401, 403, 403, 204, 204),
    ("DELETE", "promptset-detail",        "prompt_set",  None,       401, 403, 403, 409, 409),
    ("POST",   "promptset-items",         "prompt_set",  csv_items,  401, 403, 403, 201, 201),
    # the model registry (spare_model is inactive: hidden from viewers)
    ("GET",    "modelversion-list",       None,          None,       401, 200, 200, 200, 200),
    ("POST",   "modelversion-list",       None,          NEW_MODEL,  401, 403, 403, 201, 201),
    ("GET",    "modelversion-detail",     "base",        None,       401, 200, 200, 200, 200),
    ("GET",    "modelversion-detail",     "spare_model", None,       401, 404, 404, 200, 200),
    ("PUT",    "modelversion-detail",     "spare_model", MODEL,      401, 403, 403, 200, 200),
    ("PATCH",  "modelversion-detail",     "spare_model", DESCRIBE,   401, 403, 403, 200, 200),
    ("DELETE", "modelversion-detail",     "spare_model", None,       401, 403, 403, 403, 204),
    ("DELETE", "modelversion-detail",     "base",        None,       401, 403, 403, 403, 409),
    ("POST",   "modelversion-make-default", "spare_model", None,     401, 403, 403, 200, 200),
    # who may use which model (usable_by): the others neither see it nor may choose it (a
    # model one may not use is refused as one that does not exist: 404 naming the field)
    ("GET",    "modelversion-detail",     "editors_model", None,     401, 404, 404, 200, 200),
    ("GET",    "modelversion-detail",     "admins_lora", None,       401, 404, 404, 404, 200),
    ("POST",   "job-list",                None,  job_on_editors_model, 401, 404, 404, 201, 201),
    ("POST",   "job-list",                None,  job_with_admins_lora, 401, 404, 404, 404, 201),
    # training runs
    ("GET",    "trainingrun-list",        None,          None,       401, 200, 200, 200, 200),
    ("POST",   "trainingrun-list",        None,          training,   401, 403, 403, 201, 201),
    ("GET",    "trainingrun-detail",      "run",         None,       401, 200, 404, 200, 200),
    ("POST",   "trainingrun-cancel",      "run",         None,       401, 200, 404, 200, 200),
    ("POST",   "trainingrun-retry",       "failed_run",  None,       401, 403, 403, 200, 200),
    # pages: account
    ("GET",    "home",                    None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("GET",    "api_token",               None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "api_token",               None,          TOKEN,  SIGN_IN, 302, 302, 302, 302),
    # one's own preferences: every signed-in user, on their own row only
    ("GET",    "account_settings",        None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "account_settings",        None,          HIDE,   SIGN_IN, 302, 302, 302, 302),
    ("GET",    "api_me",                  None,          None,       401, 200, 200, 200, 200),
    ("PATCH",  "api_me",                  None,          HIDE,       401, 200, 200, 200, 200),
    # an invite link: for a visitor who is not signed in (signed in, it opens nothing)
    ("GET",    "accept_invite",           "invite",      None,       302, 404, 404, 404, 404),
    # invites: admins only
    ("GET",    "invite-list",             None,          None,       401, 403, 403, 403, 200),
    ("POST",   "invite-list",             None,      NEW_INVITE,     401, 403, 403, 403, 201),
    ("GET",    "invite-detail",           "invite",      None,       401, 403, 403, 403, 200),
    ("DELETE", "invite-detail",           "invite",      None,       401, 403, 403, 403, 204),
    # pages: albums and images (the file views answer 404 to whoever may not see the image)
    ("GET",    "album_list",              None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "album_list",              None,       NEW_ALBUM, SIGN_IN, 302, 302, 302, 302),
    ("GET",    "album_detail",            "album",       None,   SIGN_IN, 200, 404, 200, 200),
    ("GET",    "album_detail",            "public_album", None,  SIGN_IN, 200, 200, 200, 200),
    ("POST",   "album_upload",            "album",       upload, SIGN_IN, 302, 404, 302, 302),
    ("POST",   "album_upload",            "public_album", upload, SIGN_IN, 302, 403, 302, 302),
    ("POST",   "album_caption",           "album",       None,   SIGN_IN, 302, 404, 302, 302),
    ("POST",   "album_caption",           "public_album", None,  SIGN_IN, 302, 403, 302, 302),
    ("GET",    "image_detail",            "image",       None,   SIGN_IN, 200, 404, 200, 200),
    ("POST",   "image_detail",            "image",       CAPTION, SIGN_IN, 403, 404, 302, 302),
    ("POST",   "image_add_to_album",      "image", to_public_album, SIGN_IN, 302, 404, 302, 302),
    ("GET",    "image_file",              "image",       None,       404, 200, 404, 200, 200),
    ("GET",    "image_thumbnail",         "image",       None,       404, 200, 404, 200, 200),
    # pages: scrape runs
    ("GET",    "scrape_list",             None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "scrape_list",             None,          SCRAPE, SIGN_IN, 403, 403, 302, 302),
    ("GET",    "scrape_detail",           "scrape_run",  None,   SIGN_IN, 200, 404, 404, 404),
    ("GET",    "scrape_detail",           "editors_scrape", None, SIGN_IN, 404, 404, 200, 404),
    ("POST",   "scrape_cancel",           "scrape_run",  None,   SIGN_IN, 403, 404, 404, 404),
    ("POST",   "scrape_cancel",           "editors_scrape", None, SIGN_IN, 404, 404, 302, 404),
    # pages: generation
    ("GET",    "generate",                None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "generate",                None,        GENERATE, SIGN_IN, 302, 302, 302, 302),
    ("GET",    "job_list",                None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("GET",    "job_detail",              "job",         None,   SIGN_IN, 200, 404, 200, 200),
    ("GET",    "job_status",              "job",         None,   SIGN_IN, 200, 404, 200, 200),
    ("POST",   "job_cancel",              "job",         None,   SIGN_IN, 302, 404, 302, 302),
    ("POST",   "job_retry",               "job",         None,   SIGN_IN, 302, 404, 302, 302),
    ("GET",    "set_list",                None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("GET",    "set_detail",              "prompt_set",  None,   SIGN_IN, 200, 200, 200, 200),
    ("POST",   "set_detail",              "prompt_set",  THEME,  SIGN_IN, 403, 403, 302, 302),
    ("POST",   "set_loras",               "prompt_set",  None,   SIGN_IN, 403, 403, 302, 302),
    ("GET",    "batch_detail",            "batch",       None,   SIGN_IN, 200, 404, 200, 200),
    ("GET",    "batch_status",            "batch",       None,   SIGN_IN, 200, 404, 200, 200),
    ("POST",   "batch_cancel",            "batch",       None,   SIGN_IN, 302, 404, 302, 302),
    # pages: training
    ("GET",    "album_train",             "album",       None,   SIGN_IN, 403, 403, 200, 200),
    ("POST",   "album_train",             "album",    TRAIN_FORM, SIGN_IN, 403, 403, 302, 302),
    ("GET",    "training_list",           None,          None,   SIGN_IN, 200, 200, 200, 200),
    ("GET",    "training_detail",         "run",         None,   SIGN_IN, 200, 404, 200, 200),
    ("GET",    "training_status",         "run",         None,   SIGN_IN, 200, 404, 200, 200),
    ("POST",   "training_cancel",         "run",         None,   SIGN_IN, 302, 404, 302, 302),
    ("POST",   "training_retry",          "failed_run",  None,   SIGN_IN, 403, 403, 302, 302),
    ("GET",    "training_kohya",          "trained_run", None,   SIGN_IN, 200, 404, 200, 200),
]

# What each list shows of vera's things, per signed-in actor (anonymous callers get no list:
# see ROWS). API lists are read by id, pages by a link to the object's page. Every API list
# needs a row here.
LISTED = [
    # URL name           object         linked page        vera   otto   editor admin
    ("image-list",       "image",       None,              True,  False, True,  True),
    ("album-list",       "album",       None,              True,  False, True,  True),
    ("album-list",       "public_album", None,             True,  True,  True,  True),
    ("job-list",         "job",         None,              True,  False, True,  True),
    ("batch-list",       "batch",       None,              True,  False, True,  True),
    ("promptset-list",   "prompt_set",  None,              True,  True,  True,  True),
    ("modelversion-list", "spare_model", None,             False, False, True,  True),
    ("modelversion-list", "editors_model", None,           False, False, True,  True),
    ("modelversion-list", "admins_lora", None,             False, False, False, True),
    ("invite-list",      "invite",      None,              False, False, False, True),
    ("trainingrun-list", "run",         None,              True,  False, True,  True),
    ("scraperun-list",   "scrape_run",  None,              True,  False, False, False),
    ("album_list",       "album",       "album_detail",    True,  False, True,  True),
    ("job_list",         "job",         "job_detail",      True,  False, False, False),  # mine
    ("set_list",         "prompt_set",  "set_detail",      True,  True,  True,  True),
    ("training_list",    "run",         "training_detail", True,  False, True,  True),
    ("scrape_list",      "scrape_run",  "scrape_detail",   True,  False, False, False),
]


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    target: str | None
    payload: object
    expected: tuple

    @classmethod
    def of(cls, line):
        method, name, target, payload, *expected = line
        assert len(expected) == len(ACTORS), line
        return cls(method, name, target, payload, tuple(expected))


# What the walk leaves out, and why. Everything else needs rows.
def skipped_include(resolver):
    return (
        resolver.app_name == "admin"  # the admin site: Django's staff and model permissions
        # allauth's own pages (sign-in, sign-up, password reset) are for anonymous visitors;
        # test_web_security.py checks their headers and CSRF.
        or getattr(resolver.urlconf_module, "__name__", "").startswith("allauth.")
    )


SKIPPED_VIEW_MODULES = (
    "django.views.static",  # static and media file serving in development (whitenoise
    "django.contrib.staticfiles",  # serves static files today, so none is routed)
)


def routes():
    """(name, pattern, route) of every route the matrix must cover."""
    return [
        (name, pattern, route)
        for name, pattern, route in url_routes(skip_include=skipped_include)
        if not pattern.callback.__module__.startswith(SKIPPED_VIEW_MODULES)
    ]


def declared_methods(view):
    """The methods a Django view's require_http_methods (require_POST, require_safe...)
    allows, found in the decorator's closure; None if it has no such decorator."""
    while view is not None:
        code = getattr(view, "__code__", None)
        if code is not None:
            for name, cell in zip(code.co_freevars, view.__closure__ or (), strict=True):
                if name == "request_method_list":
                    return cell.cell_contents
        view = getattr(view, "__wrapped__", None)
    return None


def routed_methods(pattern):
    """The methods a route must have rows for: a viewset route's actions, a DRF view's
    handlers, a Django view's require_http_methods, else GET."""
    callback = pattern.callback
    if getattr(callback, "actions", None):
        methods = callback.actions
    elif getattr(callback, "cls", None) is not None:
        view = callback.cls
        methods = [m for m in view.http_method_names if m != "options" and hasattr(view, m)]
    else:
        methods = declared_methods(callback) or ["GET"]
    return {method.upper() for method in methods} - {"HEAD", "OPTIONS", "TRACE"}


def test_it_has_a_row_for_every_route_and_method():
    rows = {(row.name, row.method) for row in map(Row.of, ROWS)}
    missing, names = [], set()
    for name, pattern, route in routes():
        assert name, f"/{route}: give the route a name, then add its rows to ROWS"
        names.add(name)
        for method in sorted(routed_methods(pattern)):
            if (name, method) not in rows:
                missing.append(f"{method} /{route} ({name})")
    assert not missing, "Routes with no row in ROWS:\n" + "\n".join(missing)
    assert {name for name, _ in rows} <= names, "rows for names the URL conf lacks"
    api_lists = {name for name, _ in rows if name.endswith("-list")}
    assert api_lists <= {line[0] for line in LISTED}, "API lists with no row in LISTED"


def route_arguments():
    """URL name -> the names of its URL's arguments (`format` marks a `.json` twin)."""
    arguments = {}
    for name, pattern, _ in routes():
        arguments.setdefault(name, set()).update(pattern.pattern.regex.groupindex)
    return arguments


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(settings, viewer, other_viewer, editor, admin_user):
    """What the URLs point at: vera's (the viewer's) things, unless said otherwise."""
    # Captioning is only queued here, never run: any model name will do.
    settings.IMAGINEER_CAPTION_MODEL = "captioner-never-loaded"
    # Models are registered by hub id here (never downloaded: no worker runs).
    settings.IMAGINEER_HUB_DOWNLOADS = True
    vera = viewer
    base = ModelVersion.objects.create(name="demo", kind="base", source="demo",
                                       is_default=True)
    album = Album.objects.create(name="Holiday", owner=vera, visibility="private")
    image = make_image(1, created_by=vera)
    album.add_images([image], by=vera)
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="the sign of {sign}",
                                          created_by=editor)
    prompt_set.import_csv("sign\nleo\n")
    trained_run = TrainingRun.objects.create(name="trained", album=album, base_model=base,
                                             owner=vera, status="succeeded")
    trained_run.kohya_file.save("kohya.safetensors", ContentFile(b"weights"))
    invite, key = Invite.create("invited@example.com", by=admin_user)
    invite.key = key  # the link's key, which the row does not keep
    return SimpleNamespace(
        users={"viewer": vera, "other viewer": other_viewer, "editor": editor,
               "admin": admin_user},
        base=base,
        spare_model=ModelVersion.objects.create(name="spare", kind="base",
                                                source="example/spare", is_active=False),
        editors_model=ModelVersion.objects.create(name="studio", kind="base",
                                                  source="example/studio", usable_by="editor"),
        admins_lora=ModelVersion.objects.create(name="house", kind="lora",
                                                source="house.safetensors", usable_by="admin"),
        album=album,
        public_album=Album.objects.create(name="Shared", owner=vera, visibility="public"),
        image=image,
        caption_run=CaptionRun.objects.create(album=album, created_by=vera,
                                              status="succeeded"),
        prompt_set=prompt_set,  # in use by the batch
        spare_set=PromptSet.objects.create(name="Spare", prompt_template="a {thing}",
                                           created_by=editor),
        batch=Batch.objects.create(prompt_set=prompt_set, owner=vera, total=1),
        job=Job.objects.create(owner=vera, prompt="a castle", model=base, width=64,
                               height=64, steps=4, guidance_scale=7.0, seed=1,
                               scheduler="pndm"),
        run=TrainingRun.objects.create(name="holiday", album=album, base_model=base,
                                       owner=vera),
        failed_run=TrainingRun.objects.create(name="failed", album=album, base_model=base,
                                              owner=vera, status="failed"),
        trained_run=trained_run,
        invite=invite,
        scrape_run=ScrapeRun.objects.create(start_url="https://example.org/", album=album,
                                            created_by=vera),
        editors_scrape=ScrapeRun.objects.create(start_url="https://example.org/",
                                                created_by=editor),
    )


@pytest.fixture
def clients(world):
    """Per actor: an API client with its token, and a browser signed in with a session."""
    clients = {"anonymous": (APIClient(), Client())}
    for actor, user in world.users.items():
        api, browser = APIClient(), Client()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        browser.force_login(user)
        clients[actor] = (api, browser)
    return clients


def url_kwargs(name, target, arguments):
    """The URL arguments of `name` taken from `target` (its pk, slug or key)."""
    if target is None:
        return {}
    return {key: getattr(target, key) for key in ("pk", "slug", "key") if key in arguments[name]}


def urls(row, world, arguments):
    """The row's URL and, if the URL conf has one, its `.json` twin."""
    target = getattr(world, row.target) if row.target else None
    kwargs = url_kwargs(row.name, target, arguments)
    yield reverse(row.name, kwargs=kwargs)
    if "format" in arguments[row.name]:
        yield reverse(row.name, kwargs={**kwargs, "format": "json"})


def call(client, row, url, world, api):
    """Make the row's call and undo it: the status, or SIGN_IN, or the 500's exception."""
    payload = row.payload(world) if callable(row.payload) else row.payload
    options = {}
    if payload is not None:
        options["data"] = payload
        if api:
            multipart = any(hasattr(value, "read") for value in payload.values())
            options["format"] = "multipart" if multipart else "json"
    try:
        with transaction.atomic():
            response = getattr(client, row.method.lower())(url, **options)
            if response.streaming:  # read to its end, which closes it
                b"".join(response.streaming_content)
            transaction.set_rollback(True)
    except Exception as exc:  # the test client raises what made a 500
        return f"500 {exc.__class__.__name__}: {exc}"
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith(resolve_url(settings.LOGIN_URL)):
        return SIGN_IN
    return response.status_code


def test_it_answers_every_endpoint_as_the_matrix_says(world, clients):
    arguments = route_arguments()
    wrong = []
    for row in map(Row.of, ROWS):
        for url in urls(row, world, arguments):
            api = url.startswith("/api/")
            got = tuple(call(clients[actor][0 if api else 1], row, url, world, api)
                        for actor in ACTORS)
            if got != row.expected:
                wrong.append(f"{row.method} {url} ({row.name}, {row.target}): "
                             f"expected {row.expected}, got {got}")
    assert not wrong, "\n".join(wrong)


def listed(client, name, target, page):
    """Whether the list at `name` shows `target`: its id in the API's results, or a link
    to its page. A list the caller may not read (403: invites for all but admins) shows
    nothing."""
    response = client.get(reverse(name))
    if response.status_code == 403:
        return False
    assert response.status_code == 200, name
    if page is None:
        return target.pk in {item["id"] for item in response.json()["results"]}
    link = reverse(page, kwargs=url_kwargs(page, target, route_arguments()))
    return f'href="{link}"' in response.content.decode()


def test_it_lists_only_what_each_actor_may_see(world, clients):
    wrong = []
    for name, target, page, *expected in LISTED:
        api = page is None
        got = [listed(clients[actor][0 if api else 1], name, getattr(world, target), page)
               for actor in ACTORS[1:]]
        if got != expected:
            wrong.append(f"{name} showing {target}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)
