"""Automatic NSFW flags (generation/nsfw.py): a tiny image classifier built here (a ViT whose
weights make red pictures read nsfw, generation/engine/nsfw.py), run by a real worker on
a generated image and on uploads; the admin's threshold; a person's flag wins; a
classifier that fails flags nothing and fails no job."""

import json

import pytest
from django_q.models import Task
from PIL import Image as PILImage

from albums.models import Image
from albums.tests.images import make_image, png_bytes
from generation.engine.nsfw import NsfwModelUnusable, NsfwScorer, build_tiny_nsfw_classifier
from generation.models import SiteSettings, Status
from imagineer.testing import wait_for

RED, BLUE = (230, 10, 10), (10, 10, 230)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return build_tiny_nsfw_classifier(tmp_path_factory.mktemp("nsfw-classifier"))


def picture(color, size=(64, 48)):
    return PILImage.new("RGB", size, color)


def test_the_tiny_classifier_reads_red_pictures_as_nsfw(classifier_dir):
    scorer = NsfwScorer(str(classifier_dir), local_files_only=True, device="cpu")
    red, blue, white = scorer.score([picture(RED), picture(BLUE), picture((255, 255, 255))])
    assert red == pytest.approx(0.88, abs=0.01)
    assert blue == pytest.approx(0.12, abs=0.01)
    assert white == pytest.approx(0.12, abs=0.01)
    # Mostly red (three of the four patches): nsfw; a red quarter: not.
    mostly_red = picture(RED)
    mostly_red.paste(picture(BLUE, (32, 24)), (0, 0))
    quarter_red = picture(BLUE)
    quarter_red.paste(picture(RED, (32, 24)), (0, 0))
    assert scorer.score([mostly_red, quarter_red]) == pytest.approx([0.88, 0.12], abs=0.01)


def test_it_refuses_a_classifier_without_an_nsfw_label(classifier_dir, tmp_path):
    other = tmp_path / "cats"
    for path in classifier_dir.iterdir():
        (other / path.name).parent.mkdir(exist_ok=True)
        (other / path.name).write_bytes(path.read_bytes())
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {"0": "cat", "1": "dog"}
    config["label2id"] = {"cat": 0, "dog": 1}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(NsfwModelUnusable, match="no 'nsfw' label.*cat, dog"):
        NsfwScorer(str(other), device="cpu")


def test_it_never_downloads_a_hub_id_unless_hub_downloads_are_on(settings, caplog):
    from generation.nsfw import score_pictures

    settings.IMAGINEER_NSFW_MODEL = "example/not-in-the-local-cache"
    settings.IMAGINEER_HUB_DOWNLOADS = False
    assert score_pictures([picture(RED)]) is None  # no network: refused from the cache
    assert "the NSFW classifier failed" in caplog.text


@pytest.mark.django_db
def test_a_persons_flag_wins_over_the_classifier(make_user, admin_user, client):
    owner = make_user("owner")
    cleared, flagged, untouched = (make_image(n, created_by=owner) for n in (1, 2, 3))
    client.force_login(admin_user)
    # The admin's actions and the API are a person's word: the flag is theirs from then on.
    client.post("/admin/albums/image/", {"action": "unmark_nsfw", "_selected_action": [cleared.pk]})
    cleared.refresh_from_db()
    assert cleared.nsfw_by_hand and not cleared.nsfw
    flagged.set_nsfw(True)
    for image in (cleared, flagged, untouched):
        image.record_nsfw_score(0.95, threshold=0.8)
        image.refresh_from_db()
    assert (cleared.nsfw, cleared.nsfw_score) == (False, 0.95)  # scored, the flag kept
    assert flagged.nsfw
    assert untouched.nsfw and not untouched.nsfw_by_hand
    # Below the threshold the classifier never lowers a flag.
    flagged.record_nsfw_score(0.1, threshold=0.8)
    assert flagged.nsfw and flagged.nsfw_score == 0.1


@pytest.mark.django_db
def test_the_admin_changes_the_threshold_within_0_to_1(api_as, admin_user):
    client = api_as(admin_user)
    for bad in (1.5, -0.1, "high", None):
        response = client.patch("/api/config/", {"nsfw_threshold": bad}, format="json")
        assert response.status_code == 400, bad
        assert "nsfw_threshold" in response.json(), response.json()
    assert SiteSettings.current().nsfw_threshold == 0.8
    response = client.patch("/api/config/", {"nsfw_threshold": 0.5}, format="json")
    assert response.status_code == 200 and response.json()["nsfw_threshold"] == 0.5
    assert SiteSettings.current().nsfw_threshold == 0.5


def scored(image_id):
    image = Image.objects.get(pk=image_id)
    return image if image.nsfw_score is not None else None


@pytest.mark.django_db(transaction=True)
def test_the_worker_scores_generated_and_uploaded_images_by_the_threshold(
    start_worker, quick_job, api_as, viewer, editor, admin_user, classifier_dir, settings
):
    settings.IMAGINEER_NSFW_MODEL = str(classifier_dir)  # the web side queues the scoring
    response = api_as(admin_user).patch("/api/config/", {"nsfw_threshold": 0.5}, format="json")
    assert response.status_code == 200
    # Uploads are stored and answered before any worker runs: they never wait for the
    # classifier, whose task is queued.
    uploads = {}
    for name, color in (("red", RED), ("blue", BLUE)):
        response = api_as(editor).post(
            "/api/images/", {"file": [_upload(name, color)]}, format="multipart"
        )
        assert response.status_code == 201, response.content
        uploads[name] = response.json()[0]["id"]
    assert Image.objects.filter(pk__in=uploads.values(), nsfw_score=None).count() == 2

    worker = start_worker(IMAGINEER_NSFW_MODEL=str(classifier_dir))
    red, blue = (
        wait_for(lambda pk=pk: scored(pk), timeout=400, message="a scored upload")
        for pk in (uploads["red"], uploads["blue"])
    )
    assert red.nsfw_score == pytest.approx(0.88, abs=0.01) and red.nsfw
    assert blue.nsfw_score == pytest.approx(0.12, abs=0.01) and not blue.nsfw

    submitted = quick_job(prompt="a red square")
    job = succeeded(submitted["id"])
    image = job.images.get()
    # Scored in the task that stored it: flagged (or not) as the job ends.
    assert image.nsfw_score is not None, worker.log()[-3000:]
    assert image.nsfw == (image.nsfw_score >= 0.5)
    assert api_as(viewer).get(f"/api/images/{image.pk}/").json()["nsfw_score"] == pytest.approx(
        image.nsfw_score
    )


@pytest.mark.django_db(transaction=True)
def test_a_classifier_that_fails_flags_nothing_and_fails_no_job(
    start_worker, quick_job, api_as, editor, tmp_path, settings
):
    settings.IMAGINEER_NSFW_MODEL = str(tmp_path / "no-such-model")
    worker = start_worker(IMAGINEER_NSFW_MODEL=settings.IMAGINEER_NSFW_MODEL)
    submitted = quick_job()
    job = succeeded(submitted["id"])
    image = job.images.get()
    assert image.nsfw_score is None and not image.nsfw
    response = api_as(editor).post(
        "/api/images/", {"file": [_upload("red", RED)]}, format="multipart"
    )
    assert response.status_code == 201
    task = wait_for(
        lambda: Task.objects.filter(group="nsfw").first(),
        timeout=120,
        message="the upload's scoring task to end",
    )
    assert task.success and task.result == "nsfw: 1 images not scored"
    upload = Image.objects.get(pk=response.json()[0]["id"])
    assert upload.nsfw_score is None and not upload.nsfw
    assert "the NSFW classifier failed" in worker.log()


def succeeded(job_id):
    """The job once it has ended, which must be in success."""
    from generation.models import Job

    ended = (Status.SUCCEEDED, Status.FAILED)
    job = wait_for(
        lambda: (row := Job.objects.get(pk=job_id)).status in ended and row,
        timeout=400,
        message="the job to end",
    )
    assert job.status == Status.SUCCEEDED, job.error
    return job


def _upload(name, color):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(f"{name}.png", png_bytes(color=color), "image/png")
