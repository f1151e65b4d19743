"""Isolation between users: nothing of one user's that they did not share is observable by
another (DESIGN.md, "Every account is a stranger"; issue 13).

Two viewers and an editor. vera (a viewer) and edith (an editor) own private things: an
album, an image with its prompt, caption and bytes, a job, a batch, a training run, a
caption run; the admin a pending invite, and a model and a LoRA only admins may use
(usable_by). vera also shares a public album. otto (the other
viewer) walks every route of the URL conf, API and pages, each method, as the role matrix
does (test_role_matrix.py), aiming at their things where a route names an object.

Each call is made twice, each time in a transaction that is rolled back: once in the world
as it is, once with the private things deleted (their ids and slugs still in the URL and
the payload). What otto gets must be the same: the same status, and for reads and refusals
the same body (once CSRF tokens are masked). So no row, count, name, hash, caption, prompt
or file of theirs changes what he sees: a 404 for their album is a 404 for a missing one,
a list has the same count, an error the same words. Besides, no answer holds any of their
private strings or bytes (names, prompts, captions, sha256s, email addresses, file
bytes), and no call changes their rows.

The URL conf is walked: a route (or a method of one) with no row in ROWS fails
`test_it_has_an_isolation_row_for_every_route_and_method`, naming it. Adding a route: a
row in ROWS, aimed at their private thing when the route names an object (add it to
`private_world` if it is of a new kind).
"""

import re
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Invite
from albums.models import Album, CaptionRun, Image, ScrapeRun
from albums.tests.images import make_image, png_bytes
from generation.models import Batch, Job, ModelVersion, PromptSet
from imagineer.tests.test_role_matrix import route_arguments, routed_methods, routes
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

# Markers: every text of the private things holds one, so an answer that shows any of
# them is caught by a plain search.
SECRET = "zq7secret"  # noqa: S105 (a marker to search answers for, no password)


def secret(what):
    return f"{what} {SECRET} {what}"


# Payloads: a dict, or a function of the world giving one (a file is read once).

def upload(world):
    return {"file": SimpleUploadedFile("otto.png", png_bytes(color=(5, 6, 7)), "image/png")}


def upload_to_their_album(world):
    return {**upload(world), "album": world.ids["vera_album"]}


def their_image_into_my_album(world):
    return {"image_ids": [world.ids["vera_image"]]}


def my_image_into_their_album(world):
    return {"album": world.ids["vera_album"]}


def train_on_their_album(world):
    return {"album": world.ids["vera_album"], "name": "otto-lora"}


def train_form_their_album(world):
    return {"name": "otto-lora", "steps": 10, "rank": 4, "alpha": 4, "learning_rate": 1e-4,
            "resolution": 64, "batch_size": 1, "gradient_accumulation": 1,
            "checkpoint_every": 0}


def scrape_into_their_album(world):
    return {"start_url": "https://example.org/", "album": world.ids["vera_album"],
            "album_name": "Found"}


def ottos_credentials(world):
    from conftest import PASSWORD

    return {"username": "otto", "password": PASSWORD}


def csv_items(world):
    return {"file": SimpleUploadedFile("items.csv", b"sign\nleo\n", "text/csv")}


NEW_ALBUM = {"name": "Otto's new album", "visibility": "private"}
DESCRIBE = {"description": "changed by otto"}
JOB = {"prompt": "a castle", "width": 64, "height": 64, "steps": 4}
GENERATE = {"prompt": "a castle", "size": "64x64", "steps": "4", "scheduler": "pndm"}
NEW_SET = {"name": "Otto set", "prompt_template": "a {thing}"}
NEW_MODEL = {"name": "otto-model", "kind": "base", "source": "example/otto"}
NEW_INVITE = {"email": "friend@example.com"}

def job_on_admins_model(world):
    return {**JOB, "model": world.ids["admins_model"]}


def job_with_admins_lora(world):
    return {**JOB, "loras": [{"id": world.ids["admins_lora"]}]}


# One row per call otto makes: (method, URL name, object, payload). The object is a name
# in the world: vera_* and edith_* are private (absent in the second world), otto_* his
# own, the others shared by everyone. Every route and method of the URL conf needs a row.
ROWS = [
    ("GET",    "api_health",              None,            None),
    ("GET",    "api-root",                None,            None),
    ("GET",    "api_schema",              None,            None),
    ("GET",    "api_docs",                None,            None),
    ("POST",   "api_obtain_token",        None,            ottos_credentials),
    ("GET",    "api_config",              None,            None),
    ("PATCH",  "api_config",              None,            {"default_steps": 30}),
    ("GET",    "metrics",                 None,            None),
    # images
    ("GET",    "image-list",              None,            None),
    ("POST",   "image-list",              None,            upload_to_their_album),
    ("GET",    "image-detail",            "vera_image",    None),
    ("GET",    "image-detail",            "edith_image",   None),
    ("PUT",    "image-detail",            "vera_image",    {"nsfw": True}),
    ("PATCH",  "image-detail",            "vera_image",    {"nsfw": True}),
    ("DELETE", "image-detail",            "vera_image",    None),
    # albums
    ("GET",    "album-list",              None,            None),
    ("POST",   "album-list",              None,            NEW_ALBUM),
    ("GET",    "album-detail",            "vera_album",    None),
    ("GET",    "album-detail",            "edith_album",   None),
    ("GET",    "album-detail",            "otto_album",    None),
    ("PUT",    "album-detail",            "vera_album",    NEW_ALBUM),
    ("PATCH",  "album-detail",            "vera_album",    DESCRIBE),
    ("DELETE", "album-detail",            "vera_album",    None),
    ("GET",    "album-export",            "vera_album",    None),
    ("POST",   "album-images",            "vera_album",    their_image_into_my_album),
    ("POST",   "album-images",            "otto_album",    their_image_into_my_album),
    ("DELETE", "album-images",            "otto_album",    their_image_into_my_album),
    ("PATCH",  "album-order",             "otto_album",    their_image_into_my_album),
    ("POST",   "album-import-dataset",    "vera_album",    upload),
    ("POST",   "album-caption",           "vera_album",    None),
    ("GET",    "captionrun-detail",       "vera_caption_run", None),
    # jobs and batches
    ("GET",    "job-list",                None,            None),
    ("POST",   "job-list",                None,            JOB),
    ("GET",    "job-detail",              "vera_job",      None),
    ("GET",    "job-detail",              "edith_job",     None),
    ("POST",   "job-cancel",              "vera_job",      None),
    ("POST",   "job-retry",               "vera_job",      None),
    ("POST",   "job-remix",               "vera_job",      None),
    ("GET",    "batch-list",              None,            None),
    ("POST",   "batch-list",              None,            {"set": "signs"}),
    ("GET",    "batch-detail",            "vera_batch",    None),
    ("POST",   "batch-cancel",            "vera_batch",    None),
    # prompt sets and models: shared by everyone
    ("GET",    "promptset-list",          None,            None),
    ("POST",   "promptset-list",          None,            NEW_SET),
    ("GET",    "promptset-detail",        "prompt_set",    None),
    ("PUT",    "promptset-detail",        "prompt_set",    NEW_SET),
    ("PATCH",  "promptset-detail",        "prompt_set",    DESCRIBE),
    ("DELETE", "promptset-detail",        "prompt_set",    None),
    ("POST",   "promptset-items",         "prompt_set",    csv_items),
    ("GET",    "modelversion-list",       None,            None),
    ("POST",   "modelversion-list",       None,            NEW_MODEL),
    ("GET",    "modelversion-detail",     "base",          None),
    ("PUT",    "modelversion-detail",     "base",          NEW_MODEL),
    ("PATCH",  "modelversion-detail",     "base",          DESCRIBE),
    ("DELETE", "modelversion-detail",     "base",          None),
    ("POST",   "modelversion-make-default", "base",        None),
    # a model for admins only: refused as a missing id is, its name never said
    ("GET",    "modelversion-detail",     "admins_model",  None),
    ("POST",   "job-list",                None,            job_on_admins_model),
    ("POST",   "job-list",                None,            job_with_admins_lora),
    # training runs
    ("GET",    "trainingrun-list",        None,            None),
    ("POST",   "trainingrun-list",        None,            train_on_their_album),
    ("GET",    "trainingrun-detail",      "vera_run",      None),
    ("GET",    "trainingrun-detail",      "edith_run",     None),
    ("POST",   "trainingrun-cancel",      "vera_run",      None),
    ("POST",   "trainingrun-retry",       "vera_run",      None),
    # scrape runs
    ("GET",    "scraperun-list",          None,            None),
    ("POST",   "scraperun-list",          None,            scrape_into_their_album),
    ("GET",    "scraperun-detail",        "vera_scrape",   None),
    ("GET",    "scraperun-detail",        "edith_scrape",  None),
    ("POST",   "scraperun-cancel",        "vera_scrape",   None),
    # invites (the admin's)
    ("GET",    "invite-list",             None,            None),
    ("POST",   "invite-list",             None,            NEW_INVITE),
    ("GET",    "invite-detail",           "admin_invite",  None),
    ("DELETE", "invite-detail",           "admin_invite",  None),
    # pages: account
    ("GET",    "home",                    None,            None),
    ("GET",    "api_token",               None,            None),
    ("POST",   "api_token",               None,            {"action": "create"}),
    ("GET",    "account_settings",        None,            None),
    ("POST",   "account_settings",        None,            {"nsfw_preference": "show"}),
    ("GET",    "api_me",                  None,            None),
    ("PATCH",  "api_me",                  None,            {"nsfw_preference": "show"}),
    ("GET",    "accept_invite",           "admin_invite",  None),
    # pages: albums and images
    ("GET",    "album_list",              None,            None),
    ("POST",   "album_list",              None,            NEW_ALBUM),
    ("GET",    "album_detail",            "vera_album",    None),
    ("GET",    "album_detail",            "edith_album",   None),
    ("GET",    "album_detail",            "vera_public_album", None),
    ("GET",    "album_detail",            "otto_album",    None),
    ("POST",   "album_upload",            "vera_album",    upload),
    ("POST",   "album_caption",           "vera_album",    None),
    ("GET",    "image_detail",            "vera_image",    None),
    ("GET",    "image_detail",            "vera_shared_image", None),
    ("GET",    "image_detail",            "otto_image",    None),
    ("POST",   "image_detail",            "vera_image",    {"text": "otto's caption"}),
    ("POST",   "image_add_to_album",      "vera_image",    {"album": 0}),
    ("POST",   "image_add_to_album",      "otto_image",    my_image_into_their_album),
    ("GET",    "image_file",              "vera_image",    None),
    ("GET",    "image_thumbnail",         "vera_image",    None),
    # pages: generation
    ("GET",    "generate",                None,            None),
    ("POST",   "generate",                None,            GENERATE),
    ("GET",    "job_list",                None,            None),
    ("GET",    "job_detail",              "vera_job",      None),
    ("GET",    "job_status",              "vera_job",      None),
    ("POST",   "job_cancel",              "vera_job",      None),
    ("POST",   "job_retry",               "vera_job",      None),
    ("GET",    "set_list",                None,            None),
    ("GET",    "set_detail",              "prompt_set",    None),
    ("POST",   "set_detail",              "prompt_set",    {"theme": "gold"}),
    ("POST",   "set_loras",               "prompt_set",    None),
    ("GET",    "batch_detail",            "vera_batch",    None),
    ("GET",    "batch_status",            "vera_batch",    None),
    ("POST",   "batch_cancel",            "vera_batch",    None),
    # pages: training
    ("GET",    "album_train",             "vera_album",    None),
    ("POST",   "album_train",             "vera_album",    train_form_their_album),
    ("GET",    "training_list",           None,            None),
    ("GET",    "training_detail",         "vera_run",      None),
    ("GET",    "training_status",         "vera_run",      None),
    ("POST",   "training_cancel",         "vera_run",      None),
    ("POST",   "training_retry",          "vera_run",      None),
    ("GET",    "training_kohya",          "vera_run",      None),
    # pages: scrape runs
    ("GET",    "scrape_list",             None,            None),
    ("POST",   "scrape_list",             None,            scrape_into_their_album),
    ("GET",    "scrape_detail",           "vera_scrape",   None),
    ("GET",    "scrape_detail",           "edith_scrape",  None),
    ("POST",   "scrape_cancel",           "vera_scrape",   None),
]


def test_it_has_an_isolation_row_for_every_route_and_method():
    rows = {(name, method) for method, name, _, _ in ROWS}
    missing = []
    for name, pattern, route in routes():
        for method in sorted(routed_methods(pattern)):
            if (name, method) not in rows:
                missing.append(f"{method} /{route} ({name})")
    assert not missing, (
        "Routes with no row in imagineer/tests/test_isolation.py ROWS (add one, aimed at "
        "another user's private thing where the route names an object):\n"
        + "\n".join(missing))
    assert {name for name, _ in rows} <= {name for name, _, _ in routes()}, \
        "rows for names the URL conf lacks"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def private_world(vera, edith, base, prompt_set, admin):
    """What vera and edith (and the admin) did not share: every text holds SECRET."""
    objects = {}
    for owner, number in ((vera, 101), (edith, 102)):
        name = owner.username
        album = Album.objects.create(name=secret(f"{name} album"), owner=owner,
                                     visibility="private", description=secret("about"))
        image = make_image(number, created_by=owner, prompt=secret(f"{name} prompt"),
                           params={"seed": 987654321, "note": secret("params")})
        image.set_caption(secret(f"{name} caption"), by=owner)
        album.add_images([image], by=owner)
        batch_album = Album.objects.create(name=secret(f"{name} batch album"), owner=owner)
        run = TrainingRun.objects.create(name=secret(f"{name} run"), album=album,
                                         base_model=base, owner=owner, status="succeeded",
                                         trigger_word="zq7secrettrigger",
                                         validation_prompt=secret("validation"))
        run.kohya_file.save("kohya.safetensors", ContentFile(b"zq7secret weights"))
        objects.update({
            f"{name}_album": album,
            f"{name}_image": image,
            f"{name}_job": Job.objects.create(
                owner=owner, prompt=secret(f"{name} job"), negative_prompt=secret("neg"),
                model=base, width=64, height=64, steps=4, guidance_scale=7.0, seed=424242,
                scheduler="pndm"),
            f"{name}_batch": Batch.objects.create(prompt_set=prompt_set, owner=owner,
                                                  theme=secret("theme"), total=1,
                                                  album=batch_album),
            f"{name}_batch_album": batch_album,
            f"{name}_run": run,
            f"{name}_caption_run": CaptionRun.objects.create(album=album, created_by=owner,
                                                             status="succeeded", total=1),
            f"{name}_scrape": ScrapeRun.objects.create(
                start_url=f"https://example.org/{SECRET}/{name}", album=album,
                created_by=owner),
        })
    # The platform's models that only admins may use (ModelVersion.usable_by).
    objects["admins_model"] = ModelVersion.objects.create(
        name=secret("admins model"), kind="base", source="example/zq7secret",
        usable_by="admin", description=secret("about"))
    objects["admins_lora"] = ModelVersion.objects.create(
        name=secret("admins lora"), kind="lora", source="zq7secret.safetensors",
        usable_by="admin")
    invite, key = Invite.create("zq7secret-invitee@example.com", by=admin)
    invite.key = key  # the link's key, which the row does not keep
    objects["admin_invite"] = invite
    return objects


@pytest.fixture
def world(settings, viewer, other_viewer, editor, admin_user):
    settings.IMAGINEER_CAPTION_MODEL = "captioner-never-loaded"  # only queued, never run
    settings.IMAGINEER_HUB_DOWNLOADS = True  # models by hub id, never downloaded here
    vera, otto, edith = viewer, other_viewer, editor
    for user in (vera, edith):  # their addresses are theirs alone, whatever they share
        user.email = f"{user.username}-zq7secret@example.com"
        user.save()
    base = ModelVersion.objects.create(name="demo", kind="base", source="demo",
                                       is_default=True)
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="the sign of {sign}",
                                          created_by=edith)
    prompt_set.import_csv("sign\nleo\n")
    # Shared by vera, and otto's own: in both worlds.
    public_album = Album.objects.create(name="Vera's shared gallery", owner=vera,
                                        visibility="public")
    shared_image = make_image(201, created_by=vera, prompt="a shared picture")
    public_album.add_images([shared_image], by=vera)
    otto_album = Album.objects.create(name="Otto's album", owner=otto, visibility="private")
    otto_image = make_image(202, created_by=otto, prompt="otto's picture")
    otto_album.add_images([otto_image], by=otto)
    Job.objects.create(owner=otto, prompt="otto's castle", model=base, width=64, height=64,
                       steps=4, guidance_scale=7.0, seed=1, scheduler="pndm")
    private = private_world(vera, edith, base, prompt_set, admin_user)
    world = SimpleNamespace(
        base=base, prompt_set=prompt_set, vera_public_album=public_album,
        vera_shared_image=shared_image, otto_album=otto_album, otto_image=otto_image,
        otto=otto, private=private, **private)
    world.ids = {name: obj.pk for name, obj in private.items()}
    world.markers = markers(world, vera, edith)
    return world


def markers(world, *owners):
    """What otto must never read: texts and bytes of the private things."""
    found = [SECRET.encode()]
    for owner in owners:
        found.append(owner.email.encode())
    for name in ("vera_image", "edith_image"):
        image = world.private[name]
        found.append(image.sha256.encode())
        for field in (image.file, image.thumbnail):
            with default_storage.open(field.name) as file:
                found.append(file.read())
    return found


def hide_private(world):
    """Delete the private things (in the caller's transaction): the second world."""
    private = world.private
    TrainingRun.objects.filter(pk__in=[private["vera_run"].pk, private["edith_run"].pk]).delete()
    CaptionRun.objects.filter(pk__in=[o.pk for k, o in private.items()
                                      if k.endswith("caption_run")]).delete()
    Job.objects.filter(pk__in=[o.pk for k, o in private.items() if k.endswith("_job")]).delete()
    Batch.objects.filter(pk__in=[o.pk for k, o in private.items()
                                 if k.endswith("_batch")]).delete()
    Album.objects.filter(pk__in=[o.pk for k, o in private.items()
                                 if isinstance(o, Album)]).delete()
    Image.objects.filter(pk__in=[o.pk for k, o in private.items()
                                 if k.endswith("_image")]).delete()
    Invite.objects.filter(pk=private["admin_invite"].pk).delete()
    ModelVersion.objects.filter(pk__in=[private["admins_model"].pk,
                                        private["admins_lora"].pk]).delete()
    ScrapeRun.objects.filter(pk__in=[o.pk for k, o in private.items()
                                     if k.endswith("_scrape")]).delete()


def private_state(world):
    """Every private row as it stands, to see that no call of otto's changed one."""
    state = []
    for name, obj in sorted(world.private.items()):
        row = type(obj).objects.filter(pk=obj.pk).values().first()
        state.append((name, row))
        if isinstance(obj, Image):
            state.append((name, sorted(obj.labels.values_list("text", flat=True))))
            state.append((name, sorted(obj.album_entries.values_list("album_id", flat=True))))
        if isinstance(obj, Album):
            state.append((name, sorted(obj.entries.values_list("image_id", flat=True))))
    return state


def target_kwargs(name, target, arguments):
    if target is None:
        return {}
    return {key: getattr(target, key) for key in ("pk", "slug", "key") if key in arguments[name]}


def call(client, method, url, payload, api, world, hide):
    """The call, rolled back: (status, the body and the headers that carry data, changed)."""
    options = {}
    if payload is not None:
        options["data"] = payload
        if api:
            multipart = any(hasattr(value, "read") for value in payload.values())
            options["format"] = "multipart" if multipart else "json"
    # A message a page left for the next page lives in a cookie, which no rollback undoes.
    client.cookies.pop("messages", None)
    with transaction.atomic():
        if hide:
            hide_private(world)
        before = None if hide else private_state(world)
        response = getattr(client, method.lower())(url, **options)
        body = (b"".join(response.streaming_content) if response.streaming
                else response.content)
        changed = not hide and private_state(world) != before
        transaction.set_rollback(True)
    headers = " ".join(response.get(name, "") for name in
                       ("Location", "Content-Disposition", "Content-Length", "Retry-After"))
    return response.status_code, body, headers.encode(), changed


CSRF = re.compile(rb'(name="csrfmiddlewaretoken" value="|csrf[^"]*" content=")[^"]+')


def masked(body):
    return CSRF.sub(rb"\1-", body)


@pytest.fixture
def ottos_clients(world):
    api, browser = APIClient(), None
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.otto).key}")
    from django.test import Client

    browser = Client()
    browser.force_login(world.otto)
    return api, browser


def test_nothing_of_another_users_is_observable(world, ottos_clients):
    arguments = route_arguments()
    problems = []
    for method, name, target_name, payload in ROWS:
        target = getattr(world, target_name) if target_name else None
        url = reverse(name, kwargs=target_kwargs(name, target, arguments))
        api = url.startswith("/api/") or name == "metrics"
        client = ottos_clients[0 if api else 1]
        where = f"{method} {url} ({name}, {target_name})"
        results = []
        for hide in (False, True):
            data = payload(world) if callable(payload) else payload
            try:
                results.append(call(client, method, url, data, api, world, hide))
            except Exception as exc:  # the test client raises what made a 500
                problems.append(f"{where}: 500 {exc.__class__.__name__}: {exc}")
                break
        if len(results) < 2:
            continue
        (status, body, headers, changed), (status_without, body_without, _, _) = results
        leaked = [marker[:40] for marker in world.markers if marker in body or marker in headers]
        if leaked:
            problems.append(f"{where}: answers with their private data {leaked}")
        if changed:
            problems.append(f"{where}: changed their rows")
        if status != status_without:
            problems.append(f"{where}: {status} with their things, {status_without} without")
        elif (method == "GET" or status >= 400) and masked(body) != masked(body_without):
            problems.append(f"{where}: the answer differs with their things "
                            f"({len(body)} bytes, {len(body_without)} without)")
    assert not problems, "\n".join(problems)
