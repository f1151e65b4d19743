import subprocess
import sys
import threading

import pytest
from django.core.cache import cache

from generation.models import SiteSettings
from generation.tests.conftest import QUICK
from imagineer.testing import BASE_DIR, subprocess_env

pytestmark = pytest.mark.django_db


def post_job(client, **params):
    return client.post("/api/jobs/", {"prompt": "a lantern", **QUICK, **params}, format="json")


def patch_config(client, data):
    return client.patch("/api/config/", data, format="json")


def test_it_shows_the_settings_to_every_signed_in_role(api_as, api_client, viewer, editor,
                                                       admin_user, settings):
    settings.IMAGINEER_MAX_QUEUE = 77  # no admin has saved them: the environment's values
    for user in (viewer, editor, admin_user):
        response = api_as(user).get("/api/config/")
        assert response.status_code == 200
        body = response.json()
        assert body["default_steps"] == 25 and body["default_width"] == 512
        assert body["default_scheduler"] == "pndm" and body["max_queue"] == 77
    api_client.credentials()
    assert api_client.get("/api/config/").status_code == 401


def test_it_lets_only_admins_change_the_settings(api_as, api_client, viewer, editor,
                                                 admin_user):
    for user in (viewer, editor):
        response = patch_config(api_as(user), {"max_queue": 5})
        assert response.status_code == 403
    api_client.credentials()
    assert patch_config(api_client, {"max_queue": 5}).status_code == 401
    assert not SiteSettings.objects.exists()

    response = patch_config(api_as(admin_user), {"max_queue": 5, "default_steps": 30})
    assert response.status_code == 200
    assert response.json()["max_queue"] == 5 and response.json()["default_steps"] == 30
    saved = SiteSettings.objects.get()
    assert (saved.max_queue, saved.default_steps, saved.max_active_jobs) == (5, 30, 10)
    assert api_as(viewer).get("/api/config/").json()["max_queue"] == 5


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("default_steps", 0, ["between 1 and 150"]),
        ("default_width", 100, ["multiple of 8", "64 and 2048"]),
        ("default_height", 4096, ["64 and 2048"]),
        ("default_guidance_scale", 31, ["between 1.0 and 30.0"]),
        ("default_scheduler", "fastest", ["one of pndm, ddim"]),
        ("default_negative_prompt", "x" * 501, ["at most 500 characters"]),
        ("max_active_jobs", 0, ["between 1 and 10000"]),
        ("max_queue", -3, ["between 1 and 1000000"]),
        ("max_batch", 65, ["between 1 and 64"]),
        ("jobs_per_minute", "many", ["valid integer"]),
    ],
)
def test_it_refuses_bad_values_naming_the_field_and_saves_nothing(api_as, admin_user, field,
                                                                  value, words):
    client = api_as(admin_user)
    before = client.get("/api/config/").json()
    response = patch_config(client, {"batches_per_hour": 9, field: value})
    assert response.status_code == 400
    assert list(response.json()) == [field]
    message = response.json()[field][0]
    assert all(word in message for word in words), message
    if field != "jobs_per_minute":  # DRF's own type check does not repeat the name
        assert field in message
    assert not SiteSettings.objects.exists()
    assert client.get("/api/config/").json() == before


def test_it_refuses_unknown_fields(api_as, admin_user):
    response = patch_config(api_as(admin_user), {"steps": 30, "max_queue": 5})
    assert response.status_code == 400
    assert "Unknown field" in response.json()["steps"][0]
    assert "default_steps" in response.json()["steps"][0]
    assert not SiteSettings.objects.exists()


def test_it_applies_a_lower_cap_to_the_next_submission(api_as, viewer, admin_user, demo_base):
    client = api_as(viewer)
    assert post_job(client).status_code == 201
    assert post_job(client).status_code == 201
    assert patch_config(api_as(admin_user), {"max_active_jobs": 2}).status_code == 200
    response = post_job(api_as(viewer))
    assert response.status_code == 429
    assert "the limit is 2" in response.json()["detail"]


def test_it_fills_a_new_default_into_the_next_job_and_the_generate_page(api_as, client, viewer,
                                                                        admin_user, demo_base):
    first = api_as(viewer).post("/api/jobs/", {"prompt": "a lantern"}, format="json").json()
    assert first["steps"] == 25
    response = patch_config(api_as(admin_user), {"default_steps": 7, "default_scheduler": "ddim",
                                                 "default_negative_prompt": " blurry "})
    assert response.status_code == 200
    assert response.json()["default_negative_prompt"] == "blurry"
    job = api_as(viewer).post("/api/jobs/", {"prompt": "a lantern"}, format="json").json()
    assert (job["steps"], job["scheduler"], job["negative_prompt"]) == (7, "ddim", "blurry")
    client.force_login(viewer)
    page = client.get("/generate/").content.decode()
    assert 'name="steps" value="7"' in page
    assert '<option value="ddim" selected>' in page


READER = """
import sys
from generation.models import SiteSettings
for _ in sys.stdin:
    print(SiteSettings.current().max_active_jobs, flush=True)
"""


REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own, flushed by the test


@pytest.mark.parametrize("redis", [False, True], ids=["database-cache", "redis-cache"])
@pytest.mark.django_db(transaction=True)
def test_it_drops_the_cache_of_every_process_on_change(api_as, admin_user, settings, redis):
    """Another process (a web process or a worker) reads the settings through the warm
    cache; after an admin's change its next read has the new value."""
    env = {}
    if redis:  # as settings.py configures it with IMAGINEER_REDIS_URL, here and in the child
        import redis as redis_client

        redis_client.Redis.from_url(REDIS_URL).flushdb()
        env["IMAGINEER_REDIS_URL"] = REDIS_URL
        settings.CACHES = {**settings.CACHES, "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL, "KEY_PREFIX": "imagineer"}}
    reader = subprocess.Popen(  # noqa: S603 (our manage.py, fixed arguments)
        [sys.executable, str(BASE_DIR / "manage.py"), "shell", "--no-imports", "-c", READER],
        cwd=BASE_DIR, env=subprocess_env(**env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    stuck = threading.Timer(60, reader.kill)
    stuck.start()

    def read_in_child():
        reader.stdin.write("read\n")
        reader.stdin.flush()
        return reader.stdout.readline().strip()

    try:
        assert SiteSettings.current().max_active_jobs == 10
        assert read_in_child() == "10"
        assert cache.get(SiteSettings.CACHE_KEY) is not None  # warm, and shared by both
        if redis:
            assert redis_client.Redis.from_url(REDIS_URL).keys("imagineer:*")

        assert patch_config(api_as(admin_user), {"max_active_jobs": 3}).status_code == 200

        assert read_in_child() == "3"
        assert SiteSettings.current().max_active_jobs == 3
    finally:
        stuck.cancel()
        _, errors = reader.communicate(timeout=30)
    assert reader.returncode == 0, errors


def test_it_lets_admins_change_the_settings_in_the_admin(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/generation/sitesettings/")
    assert response.status_code == 302
    url = response["Location"]
    form = client.get(url)
    assert form.status_code == 200
    assert "Generation defaults" in form.content.decode()
    fields = {**SiteSettings.environment_values(), "max_queue": 40}

    bad = client.post(url, {**fields, "default_width": 100})
    assert bad.status_code == 200
    assert "default_width must be a multiple of 8" in bad.content.decode()
    assert not SiteSettings.objects.exists()

    assert client.post(url, fields).status_code == 302
    assert SiteSettings.objects.get().max_queue == 40
    assert SiteSettings.current().max_queue == 40
    assert client.get("/admin/generation/sitesettings/add/").status_code == 403
    assert client.post(url.replace("change", "delete")).status_code == 403
    assert SiteSettings.objects.exists()


def test_it_keeps_editors_out_of_the_settings_in_the_admin(client, editor):
    client.force_login(editor)
    assert "Site settings" not in client.get("/admin/").content.decode()
    url = f"/admin/generation/sitesettings/{SiteSettings.load().pk}/change/"
    assert client.get(url).status_code == 403
    response = client.post(url, {**SiteSettings.environment_values(), "max_queue": 40})
    assert response.status_code == 403
    assert not SiteSettings.objects.exists()


def test_it_shows_when_an_admin_last_saved_the_settings(api_as, admin_user):
    client = api_as(admin_user)
    assert client.get("/api/config/").json()["updated_at"] is None  # the environment's
    assert patch_config(client, {"default_steps": 30}).status_code == 200
    assert client.get("/api/config/").json()["updated_at"] is not None
