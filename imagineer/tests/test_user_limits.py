"""Per-user limits on what costs disk or CPU (accounts/limits.py): the storage quota (413)
and the throttles of uploads, imports, captioning runs, model uploads, training runs and
scrape runs (429 with Retry-After), through the API, the pages and the admin alike; admins exempt;
nothing written when refused."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.limits import storage_used
from albums.models import Album, CaptionRun, Image
from albums.tests.images import png_bytes, zip_of
from generation.models import Job, ModelVersion
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

PNG = png_bytes()


def upload(name="a.png", data=PNG):
    return SimpleUploadedFile(name, data, content_type="image/png")


def files(media_root):
    return sorted(p.name for p in media_root.rglob("*") if p.is_file())


def post_image(client, data=PNG, name="a.png"):
    return client.post("/api/images/", {"file": upload(name, data)}, format="multipart")


@pytest.fixture
def base_model(settings):
    settings.IMAGINEER_HUB_DOWNLOADS = True  # registered by hub id, never downloaded here
    return ModelVersion.objects.create(name="demo", kind="base", source="demo/base",
                                       is_default=True)


# The storage quota


def test_it_refuses_an_upload_past_the_quota_with_413_and_stores_nothing(
        api_as, viewer, settings, media_root):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG) + 10
    client = api_as(viewer)
    assert post_image(client).status_code == 201
    stored = files(media_root)

    response = post_image(client, png_bytes(color=(1, 2, 3)), "b.png")

    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail.startswith(f"Storage quota: you store {len(PNG)} bytes")
    assert f"your quota is {len(PNG) + 10} bytes" in detail
    assert "Retry-After" not in response  # waiting does not help
    assert Image.objects.count() == 1 and files(media_root) == stored


def test_bytes_the_uploader_stored_before_cost_nothing_more(api_as, viewer, settings):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG)
    client = api_as(viewer)
    assert post_image(client).status_code == 201
    response = post_image(client, name="again.png")
    assert response.status_code == 201 and response.json()[0]["duplicate"] is True
    assert storage_used(viewer) == len(PNG)


def test_another_users_images_count_toward_their_quota_only(api_as, viewer, other_viewer,
                                                            settings):
    # The same bytes, stored once on disk, count in full for each owner: what B may store
    # says nothing about what A stored.
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG)
    assert post_image(api_as(viewer)).status_code == 201
    assert post_image(api_as(other_viewer)).status_code == 201
    assert storage_used(viewer) == storage_used(other_viewer) == len(PNG)


def test_a_users_own_quota_wins_over_the_default_and_admins_have_none(
        api_as, viewer, admin_user, settings):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = 10
    assert post_image(api_as(admin_user)).status_code == 201
    assert post_image(api_as(viewer)).status_code == 413
    viewer.storage_quota_bytes = 10 * len(PNG)
    viewer.save()
    assert post_image(api_as(viewer)).status_code == 201
    viewer.storage_quota_bytes = 0  # no limit for this user
    viewer.save()
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = 1
    assert post_image(api_as(viewer), png_bytes(color=(9, 9, 9))).status_code == 201


def test_an_import_past_the_quota_is_refused_whole(api_as, viewer, settings, media_root):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG) + 10
    album = Album.objects.create(name="Set", owner=viewer)
    archive = zip_of([("a.png", PNG), ("a.txt", b"red"),
                      ("b.png", png_bytes(color=(4, 5, 6)))])
    response = api_as(viewer).post(
        f"/api/albums/{album.pk}/import/",
        {"file": SimpleUploadedFile("set.zip", archive, "application/zip")},
        format="multipart")
    assert response.status_code == 413
    assert "Storage quota" in response.json()["detail"]
    assert Image.objects.count() == 0 and files(media_root) == []


def test_the_album_page_answers_413_with_the_reason(client, viewer, settings, media_root):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = 10
    album = Album.objects.create(name="Mine", owner=viewer)
    client.force_login(viewer)
    response = client.post(reverse("album_upload", kwargs={"slug": album.slug}),
                           {"file": upload()})
    assert response.status_code == 413
    assert "Storage quota: you store 0 bytes" in response.content.decode()
    assert Image.objects.count() == 0 and files(media_root) == []


def test_a_model_upload_past_the_quota_is_refused_before_it_is_read(
        api_as, editor, settings, media_root):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = 100
    weights = SimpleUploadedFile("big.safetensors", b"x" * 1000)
    response = api_as(editor).post("/api/models/", {"name": "big", "kind": "lora",
                                                    "file": weights}, format="multipart")
    assert response.status_code == 413, response.content
    assert "this needs 1000 more; your quota is 100 bytes" in response.json()["detail"]
    assert not ModelVersion.objects.filter(name="big").exists()
    assert files(media_root) == []


def test_no_job_or_training_run_is_queued_while_the_quota_is_full(
        api_as, editor, settings, base_model):
    album = Album.objects.create(name="Set", owner=editor)
    client = api_as(editor)
    assert client.post("/api/images/", {"file": upload(), "album": album.pk},
                       format="multipart").status_code == 201
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG)

    job = client.post("/api/jobs/", {"prompt": "a castle", "width": 64, "height": 64,
                                     "steps": 4}, format="json")
    run = client.post("/api/training-runs/", {"album": album.pk, "name": "lora"},
                      format="json")

    assert (job.status_code, run.status_code) == (413, 413)
    assert "Storage quota" in job.json()["detail"]
    assert "Storage quota" in run.json()["detail"]
    assert not Job.objects.exists() and not TrainingRun.objects.exists()


def test_an_admin_sets_a_users_quota_on_the_users_page(client, admin_user, viewer):
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_change", args=[viewer.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="storage_quota_bytes"' in page.content.decode()
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items()
            if value is not None and name not in ("groups", "user_permissions",
                                                  "last_login", "date_joined", "password")}
    data.update({"storage_quota_bytes": "5000", "date_joined_0": "2026-01-01",
                 "date_joined_1": "00:00:00", "groups": [g.pk for g in viewer.groups.all()],
                 "role_changes-TOTAL_FORMS": "0", "role_changes-INITIAL_FORMS": "0"})
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    viewer.refresh_from_db()
    assert viewer.storage_quota_bytes == 5000


# Throttles


@pytest.fixture
def rates(settings):
    settings.IMAGINEER_THROTTLE_RATES = {**settings.IMAGINEER_THROTTLE_RATES,
                                         "uploads": "2/hour", "imports": "1/hour",
                                         "captioning": "1/hour", "model_uploads": "1/day",
                                         "training": "1/day", "scraping": "1/hour"}


def assert_throttled(response, message):
    assert response.status_code == 429, response.content
    assert message in response.json()["detail"]
    assert int(response["Retry-After"]) > 0


def test_uploads_past_the_rate_answer_429_naming_the_limit(api_as, viewer, rates,
                                                          media_root):
    client = api_as(viewer)
    assert post_image(client).status_code == 201
    assert post_image(client, png_bytes(color=(7, 7, 7))).status_code == 201
    stored = files(media_root)

    response = post_image(client, png_bytes(color=(8, 8, 8)))

    assert_throttled(response, "Rate limit: at most 2 upload requests per hour (uploads).")
    assert 3500 <= int(response["Retry-After"]) <= 3601
    assert Image.objects.count() == 2 and files(media_root) == stored


def test_each_user_and_scope_is_counted_alone_and_admins_are_exempt(
        api_as, viewer, other_viewer, admin_user, rates):
    for _ in range(2):
        assert post_image(api_as(viewer)).status_code == 201
    assert post_image(api_as(viewer)).status_code == 429
    assert post_image(api_as(other_viewer)).status_code == 201
    for _ in range(3):
        assert post_image(api_as(admin_user)).status_code == 201
    album = Album.objects.create(name="Set", owner=viewer)
    imported = api_as(viewer).post(f"/api/albums/{album.pk}/import/",
                                   {"file": upload()}, format="multipart")
    assert imported.status_code == 201  # imports are their own scope


def test_imports_captioning_models_and_training_are_throttled(
        api_as, editor, settings, rates, base_model):
    settings.IMAGINEER_CAPTION_MODEL = "never-loaded"  # only queued here
    client = api_as(editor)
    album = Album.objects.create(name="Set", owner=editor)

    def imported():
        return client.post(f"/api/albums/{album.pk}/import/",
                           {"file": upload(data=png_bytes(color=(3, 3, 3)))},
                           format="multipart")

    assert imported().status_code == 201
    assert_throttled(imported(), "at most 1 dataset imports per hour (imports)")

    assert client.post(f"/api/albums/{album.pk}/caption/").status_code == 202
    CaptionRun.objects.update(status="succeeded")
    assert_throttled(client.post(f"/api/albums/{album.pk}/caption/"),
                     "at most 1 captioning runs per hour (captioning)")
    assert CaptionRun.objects.count() == 1

    def lora():
        return client.post("/api/models/", {"name": "l", "kind": "lora",
                                            "file": SimpleUploadedFile("l.safetensors", b"x")},
                           format="multipart")

    assert lora().status_code == 400  # not a LoRA: refused by its rule, counted all the same
    assert_throttled(lora(), "at most 1 model registrations per day (model_uploads)")

    def train():
        return client.post("/api/training-runs/", {"album": album.pk, "name": "r"},
                           format="json")

    assert train().status_code == 201
    response = train()
    assert_throttled(response, "at most 1 training runs per day (training)")
    assert int(response["Retry-After"]) > 3600
    assert TrainingRun.objects.count() == 1


def test_the_pages_meet_the_same_throttle(client, viewer, rates, settings):
    settings.IMAGINEER_CAPTION_MODEL = "never-loaded"
    album = Album.objects.create(name="Mine", owner=viewer)
    client.force_login(viewer)
    caption = reverse("album_caption", kwargs={"slug": album.slug})
    assert client.post(caption).status_code == 302
    CaptionRun.objects.update(status="succeeded")
    response = client.post(caption)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "at most 1 captioning runs per hour" in response.content.decode()


@pytest.fixture
def failed_run(api_as, editor, base_model):
    """A training run of the editor's, started through the API, that failed."""
    album = Album.objects.create(name="Set", owner=editor)
    client = api_as(editor)
    assert client.post("/api/images/", {"file": upload(), "album": album.pk},
                       format="multipart").status_code == 201
    created = client.post("/api/training-runs/", {"album": album.pk, "name": "r"},
                          format="json")
    assert created.status_code == 201, created.content
    TrainingRun.objects.update(status="failed")
    return TrainingRun.objects.get()


def test_retrying_a_training_run_is_throttled_as_starting_one(api_as, editor, rates,
                                                             failed_run):
    response = api_as(editor).post(f"/api/training-runs/{failed_run.pk}/retry/")

    assert_throttled(response, "at most 1 training runs per day (training)")
    assert TrainingRun.objects.get().status == "failed"


def test_a_run_is_not_retried_while_its_owner_is_at_the_quota(api_as, editor, settings,
                                                              failed_run):
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG)

    response = api_as(editor).post(f"/api/training-runs/{failed_run.pk}/retry/")

    assert response.status_code == 413, response.content
    assert "Storage quota" in response.json()["detail"]
    assert TrainingRun.objects.get().status == "failed"


def test_scrape_runs_are_throttled_and_refused_at_the_quota(api_as, client, editor, rates,
                                                            settings):
    from albums.models import ScrapeRun

    api = api_as(editor)
    body = {"start_url": "https://example.org/", "album_name": "Found"}
    assert api.post("/api/scrape-runs/", body, format="json").status_code == 201
    assert_throttled(api.post("/api/scrape-runs/", body, format="json"),
                     "at most 1 scrape runs per hour (scraping)")
    client.force_login(editor)
    page = client.post(reverse("scrape_list"), body)
    assert page.status_code == 429
    assert "at most 1 scrape runs per hour" in page.content.decode()
    assert ScrapeRun.objects.count() == 1 and Album.objects.count() == 1

    settings.IMAGINEER_THROTTLE_RATES = {**settings.IMAGINEER_THROTTLE_RATES,
                                         "scraping": "100/hour"}
    assert api.post("/api/images/", {"file": upload()}, format="multipart").status_code == 201
    settings.IMAGINEER_STORAGE_QUOTA_BYTES = len(PNG)
    response = api.post("/api/scrape-runs/", body, format="json")
    assert response.status_code == 413, response.content
    assert ScrapeRun.objects.count() == 1 and Album.objects.count() == 1
