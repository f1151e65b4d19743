"""Web security: headers on every page, production cookies and HSTS, CSRF on every form,
no secrets in the logs, and the audit trail of failed sign-ins and role changes.

Every page is found by walking the URL conf (all but the admin and the API): a page that
takes arguments gets them from ARGUMENTS, built from the `site` fixture, so a new page
cannot be added without being checked here.
"""

import io
import json
import logging
import re
import secrets

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import RoleChange
from albums.models import Album, ScrapeRun
from albums.tests.images import make_image
from conftest import PASSWORD
from generation.models import Batch, Job, ModelVersion, PromptSet
from imagineer.testing import manage, subprocess_env, url_routes
from training.models import TrainingRun

# Backend-neutral (conftest.py): headers, CSRF and log contents; every route on both databases is
# the role matrix's.
pytestmark = [pytest.mark.django_db, pytest.mark.backend_neutral]

# Page name -> its URL arguments, from the `site` fixture.
ARGUMENTS = {
    "album_detail": lambda site: {"slug": site["album"].slug},
    "album_upload": lambda site: {"slug": site["album"].slug},
    "album_caption": lambda site: {"slug": site["album"].slug},
    "album_train": lambda site: {"slug": site["album"].slug},
    "image_detail": lambda site: {"pk": site["image"].pk},
    "image_add_to_album": lambda site: {"pk": site["image"].pk},
    "image_file": lambda site: {"pk": site["image"].pk},
    "image_thumbnail": lambda site: {"pk": site["image"].pk},
    "job_detail": lambda site: {"pk": site["job"].pk},
    "job_status": lambda site: {"pk": site["job"].pk},
    "job_cancel": lambda site: {"pk": site["job"].pk},
    "job_retry": lambda site: {"pk": site["job"].pk},
    "set_detail": lambda site: {"slug": site["prompt_set"].slug},
    "set_loras": lambda site: {"slug": site["prompt_set"].slug},
    "scrape_detail": lambda site: {"pk": site["scrape"].pk},
    "scrape_cancel": lambda site: {"pk": site["scrape"].pk},
    "batch_detail": lambda site: {"pk": site["batch"].pk},
    "batch_status": lambda site: {"pk": site["batch"].pk},
    "batch_cancel": lambda site: {"pk": site["batch"].pk},
    "training_detail": lambda site: {"pk": site["run"].pk},
    "training_status": lambda site: {"pk": site["run"].pk},
    "training_cancel": lambda site: {"pk": site["run"].pk},
    "training_retry": lambda site: {"pk": site["run"].pk},
    "training_kohya": lambda site: {"pk": site["run"].pk},
    "account_confirm_email": lambda site: {"key": "not-a-key"},
    "accept_invite": lambda site: {"key": "not-a-key"},
    "account_reset_password_from_key": lambda site: {"uidb36": "0", "key": "not-a-key"},
}

# Pages a signed-in admin must see (200): proof that the walk reaches real pages.
MAIN_PAGES = {
    "home", "album_list", "album_detail", "album_train", "image_detail", "generate",
    "job_list", "job_detail", "set_list", "set_detail", "batch_detail", "training_list",
    "training_detail", "api_token", "account_settings",
}


def page_routes():
    """(name, pattern, route) of every URL outside the admin and the API."""
    for name, pattern, route in url_routes():
        if not route.startswith(("admin/", "api/")):
            yield name, pattern, route


def page_urls(site):
    urls = {}
    for name, pattern, route in page_routes():
        if pattern.pattern.regex.groups:
            assert name in ARGUMENTS, f"{route}: give the page arguments in ARGUMENTS"
            urls[name] = reverse(name, kwargs=ARGUMENTS[name](site))
        else:
            urls[name or route] = reverse(name) if name else f"/{route}"
    return urls


@pytest.fixture
def site(admin_user):
    """One of each thing a page shows, owned by the admin."""
    album = Album.objects.create(name="Holiday", owner=admin_user)
    image = make_image(1, created_by=admin_user)
    album.add_images([image])
    Album.objects.create(name="Next", owner=admin_user)  # the image page offers to add to it
    base = ModelVersion.objects.create(name="demo", kind="base", source="demo",
                                       is_default=True)
    prompt_set = PromptSet.objects.create(name="Signs", prompt_template="the sign of {sign}",
                                          created_by=admin_user)
    batch = Batch.objects.create(prompt_set=prompt_set, owner=admin_user, album=album)
    job = Job.objects.create(owner=admin_user, prompt="a castle", model=base, width=64,
                             height=64, steps=4, guidance_scale=7.0, seed=1,
                             scheduler="pndm")
    run = TrainingRun.objects.create(name="holiday-lora", album=album, base_model=base,
                                     owner=admin_user)
    scrape = ScrapeRun.objects.create(start_url="https://example.com/", album=album,
                                      created_by=admin_user)
    return {"album": album, "image": image, "prompt_set": prompt_set, "batch": batch,
            "job": job, "run": run, "scrape": scrape, "admin": admin_user}


def test_it_sends_csp_nosniff_and_deny_framing_on_every_page(client, site):
    client.force_login(site["admin"])
    statuses = {}
    for name, url in page_urls(site).items():
        response = client.get(url)
        statuses[name] = response.status_code
        assert response.status_code < 500, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["X-Frame-Options"] == "DENY", url
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, url
        assert response["X-Request-ID"], url
    assert {name for name in MAIN_PAGES if statuses[name] == 200} == MAIN_PAGES, statuses


def post_forms(client, urls):
    """{action URL: page URL} of every POST form on the pages at `urls`."""
    forms = {}
    for url in urls:
        response = client.get(url, follow=True)
        if not response["Content-Type"].startswith("text/html"):
            continue  # an image, a download
        page = response.content.decode()
        for tag in re.findall(r"<form\b[^>]*>", page):
            if not re.search(r'method="post"', tag, re.IGNORECASE):
                continue
            action = re.search(r'action="([^"]*)"', tag)
            target = action.group(1) if action and action.group(1) else response.request[
                "PATH_INFO"]
            forms.setdefault(target.replace("&amp;", "&"), url)
    return forms


ANONYMOUS_PAGES = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/",
                   "/admin/login/"]


def test_it_refuses_every_form_posted_without_its_csrf_token(site, settings):
    settings.IMAGINEER_SIGNUP = "open"  # the sign-up page shows its form (else by invite)
    browser = Client()  # reads the pages, as the admin and as nobody
    forms = post_forms(browser, ANONYMOUS_PAGES)
    browser.force_login(site["admin"])
    admin_pages = [f"/admin/accounts/user/{site['admin'].pk}/change/",
                   f"/admin/albums/album/{site['album'].pk}/change/"]
    signed_in = post_forms(browser, [*page_urls(site).values(), *admin_pages])
    for name in ("album_upload", "image_add_to_album", "job_cancel", "generate", "api_token",
                 "account_settings",
                 "album_list", "account_logout", "image_detail", "album_train"):
        kwargs = ARGUMENTS[name](site) if name in ARGUMENTS else {}
        assert reverse(name, kwargs=kwargs) in signed_in, name
    assert {"/accounts/login/", "/accounts/signup/", "/admin/login/"} <= set(forms)

    forger = Client(enforce_csrf_checks=True)
    for action, page in forms.items():
        assert forger.post(action, {}).status_code == 403, f"{action} (form on {page})"
    forger.force_login(site["admin"])
    for action, page in signed_in.items():
        response = forger.post(action, {})
        assert response.status_code == 403, f"{action} (form on {page})"
        assert "CSRF" in response.content.decode()


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "imagineer.example.com",
}

# Run in a child process with the production environment, so that settings.py itself
# computes the settings: plain HTTP, then a sign-in over HTTPS.
SIGN_IN_OVER_HTTPS = """
import json
from django.test import Client
client = Client(HTTP_HOST="imagineer.example.com")
plain = client.get("/accounts/login/")
signed_in = client.post("/accounts/login/", {"login": %r, "password": %r}, secure=True)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "status": signed_in.status_code,
    "hsts": signed_in.get("Strict-Transport-Security"),
    "cookies": {name: {key: morsel[key] for key in ("secure", "httponly", "samesite")}
                for name, morsel in signed_in.cookies.items()},
}))
"""


def test_it_sends_hsts_and_secure_cookies_in_production(transactional_db, make_user):
    user = make_user("prod", "viewer")
    result = manage("shell", "-c", SIGN_IN_OVER_HTTPS % (user.email, PASSWORD),
                    env=subprocess_env(**PRODUCTION))
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["plain"] == [301, "https://imagineer.example.com/accounts/login/"]
    assert answer["status"] == 302, answer
    assert answer["hsts"] == "max-age=31536000; includeSubDomains; preload"
    session, csrf = answer["cookies"]["sessionid"], answer["cookies"]["csrftoken"]
    assert session == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert (csrf["secure"], csrf["samesite"]) == (True, "Lax")


@pytest.fixture
def json_logs():
    """What the JSON log handler writes, while the test runs."""
    [handler] = [h for h in logging.getLogger("security").handlers if h.name == "console"]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_it_keeps_passwords_and_tokens_out_of_the_logs(client, admin_user, viewer, json_logs):
    wrong = "wrong-" + secrets.token_urlsafe(12)
    assert client.post("/accounts/login/", {"login": viewer.email, "password": wrong}
                       ).status_code == 200
    assert client.post("/accounts/login/", {"login": viewer.email, "password": PASSWORD}
                       ).status_code == 302
    client.post("/account/token/", {"action": "create"})
    token = Token.objects.get(user=viewer).key
    assert client.get("/api/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    forged = secrets.token_hex(20)
    assert client.get("/api/", HTTP_AUTHORIZATION=f"Token {forged}").status_code == 401
    client.logout()
    assert client.post("/admin/login/?next=/admin/", {"username": admin_user.username,
                                                       "password": PASSWORD}).status_code == 302
    editor = Group.objects.get(name="editor")
    response = client.post(f"/admin/accounts/user/{viewer.pk}/change/", {
        "username": viewer.username, "email": viewer.email, "is_active": "on",
        "groups": [editor.pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "role_changes-TOTAL_FORMS": "0", "role_changes-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    events = {line.get("event") for line in lines}
    assert {"sign_in_failed", "sign_in", "role_change"} <= events, events
    text = json_logs.getvalue()
    for secret in (PASSWORD, wrong, token, forged):
        assert secret not in text
    # Nor in the audit trail of sign-in attempts.
    stored = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "password=****" in stored and PASSWORD not in stored and wrong not in stored

    # The audit trail: the failed sign-in and the role change, each a row.
    failure = AccessFailureLog.objects.get()
    assert (failure.username, failure.path_info) == (viewer.username, "/accounts/login/")
    change = RoleChange.objects.filter(user=viewer).first()
    assert (change.roles_after, change.changed_by) == (["editor"], admin_user)
