"""/api/training-runs/: starting runs, refusing bad input at submit, who sees what."""

import pytest
from django.core.files.storage import default_storage

from core.api import CONFLICT_IN_REQUEST
from training.models import TrainingRun
from training.validation import DEFAULTS

from .conftest import QUICK

pytestmark = pytest.mark.django_db


def post(client, data):
    return client.post("/api/training-runs/", data, format="json")


def test_it_starts_a_run_with_defaults_and_queues_it(api_as, editor, make_album, demo_base,
                                                     django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    album = make_album()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_as(editor), {"album": album.pk, "name": "my boards"})

    assert response.status_code == 201, response.content
    body = response.json()
    run = TrainingRun.objects.get()
    assert body["id"] == run.pk
    assert (body["status"], body["progress"], body["current_step"]) == ("queued", 0.0, 0)
    assert body["losses"] == [] and body["lora"] is None and body["validation_images"] == []
    assert run.base_model == demo_base and run.album == album and run.owner == editor
    for field, default in DEFAULTS.items():
        if field != "seed":
            assert body[field] == default, field
    assert 0 <= body["seed"] < 2**31
    # One task on the training cluster's queue.
    (task,) = OrmQ.objects.all()
    assert task.key == "training"
    assert task.task["func"] == "training.tasks.run_training"
    assert task.task["args"] == (run.pk,)


def test_it_takes_every_field_of_the_issue(api_as, editor, make_album, demo_base):
    album = make_album()
    fields = {"album": album.pk, "name": "full", "base_model": demo_base.pk, "rank": 16,
              "alpha": 8.5, "learning_rate": 5e-4, "steps": 1200, "batch_size": 2,
              "gradient_accumulation": 3, "resolution": 256, "seed": 99,
              "trigger_word": "sks", "center_crop": False, "random_flip": True,
              "train_convolutions": True, "checkpoint_every": 300,
              "validation_prompt": "sks, a board"}
    response = post(api_as(editor), fields)

    assert response.status_code == 201, response.content
    body = response.json()
    assert {key: body[key] for key in fields} == fields


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("rank", 0, "rank must be between 1 and 128; got 0."),
    ("rank", 129, "rank must be between 1 and 128; got 129."),
    ("steps", 0, "steps must be between 1 and 20000; got 0."),
    ("steps", 20001, "steps must be between 1 and 20000; got 20001."),
    ("resolution", 56, "resolution must be between 64 and 1024; got 56."),
    ("resolution", 1032, "resolution must be between 64 and 1024; got 1032."),
    ("resolution", 100, "resolution must be a multiple of 8 between 64 and 1024; got 100."),
    ("learning_rate", 0, "learning_rate must be between 1e-07 and 0.1; got 0.0."),
    ("learning_rate", 1.5, "learning_rate must be between 1e-07 and 0.1; got 1.5."),
    ("alpha", 0, "alpha must be between 0.1 and 1024.0; got 0.0."),
    ("batch_size", 0, "batch_size must be between 1 and 64; got 0."),
    ("gradient_accumulation", 65, "gradient_accumulation must be between 1 and 64; got 65."),
    ("checkpoint_every", -1, "checkpoint_every must be between 0 and 20000; got -1."),
    ("seed", -5, "seed must be between 0 and 2147483647; got -5."),
    ("name", "", "name must be 1 to 200 characters; it is empty."),
    ("trigger_word", "x" * 101, "trigger_word must be at most 100 characters; got 101."),
    ("validation_prompt", "x" * 501, "validation_prompt must be at most 500 characters"),
])
def test_it_refuses_values_out_of_range_naming_the_field(api_as, editor, make_album, demo_base,
                                                         field, value, rule):
    response = post(api_as(editor), {"album": make_album().pk, "name": "boards", field: value})

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert response.json()[field][0].startswith(rule)
    assert not TrainingRun.objects.exists()


def test_it_refuses_an_unknown_field(api_as, editor, make_album, demo_base):
    response = post(api_as(editor), {"album": make_album().pk, "name": "boards", "step": 10})

    assert response.status_code == 400
    assert "Unknown field" in response.json()["step"][0]
    assert not TrainingRun.objects.exists()


def test_it_requires_the_album_and_the_name(api_as, editor, demo_base):
    response = post(api_as(editor), {})

    assert response.status_code == 400
    assert set(response.json()) == {"album", "name"}


def test_it_refuses_an_empty_album(api_as, editor, make_album, demo_base):
    album = make_album(0, name="Empty")
    response = post(api_as(editor), {"album": album.pk, "name": "boards"})

    assert response.status_code == 409  # the album's state (core.errors.CONFLICT)
    assert response.json() == {"detail": CONFLICT_IN_REQUEST,
        "album": ["album: Empty has no images; add some before training on it."]}
    assert not TrainingRun.objects.exists()


def test_it_refuses_an_album_with_no_usable_image(api_as, editor, make_album, demo_base):
    album = make_album(2, name="Broken")
    for image in album.images.all():  # the files went bad after they were stored
        path = default_storage.path(image.file.name)
        with open(path, "wb") as file:
            file.write(b"not an image any more")
    response = post(api_as(editor), {"album": album.pk, "name": "boards"})

    assert response.status_code == 409
    assert response.json() == {"detail": CONFLICT_IN_REQUEST,
        "album": ["album: none of the 2 images of Broken can be read as an image."]}
    assert not TrainingRun.objects.exists()


def test_it_trains_on_an_album_with_one_usable_image_of_an_odd_mode(
        api_as, editor, make_album, demo_base):
    import io

    from PIL import Image as PILImage

    from albums.ingest import store_image

    album = make_album(1)
    default_storage.delete(album.images.get().file.name)  # this one is gone
    out = io.BytesIO()
    PILImage.new("I;16", (70, 130), 40000).save(out, "PNG")  # 16-bit grey, not square
    odd, _ = store_image(out.getvalue(), filename="odd.png", source="upload")
    album.add_images([odd])

    response = post(api_as(editor), {"album": album.pk, "name": "boards"})

    assert response.status_code == 201, response.content


def test_it_refuses_a_lora_or_an_inactive_model_as_base(api_as, editor, make_album, make_lora,
                                                        demo_model_dir):
    from generation.models import ModelVersion

    lora = make_lora(0)
    inactive = ModelVersion.from_source(name="old", kind="base", source=str(demo_model_dir),
                                        is_active=False).register()
    album = make_album()
    for model in (lora, inactive):
        response = post(api_as(editor), {"album": album.pk, "name": "b", "base_model": model.pk})
        assert response.status_code == 400
        assert response.json()["base_model"] == [
            f"base_model must be an active base model; {model} is not."]
    assert not TrainingRun.objects.exists()


def test_it_needs_the_editor_role_to_start_a_run(api_as, viewer, make_album, demo_base):
    album = make_album(owner=viewer)
    response = post(api_as(viewer), {"album": album.pk, "name": "boards"})

    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_it_needs_a_signed_in_user(api_client):
    assert api_client.get("/api/training-runs/").status_code in (401, 403)


def test_it_shows_viewers_only_their_own_runs_and_editors_all(
        api_as, editor, viewer, admin_user, make_album, start_run):
    mine = start_run(make_album())
    theirs = TrainingRun.objects.create(name="old", album=None, owner=viewer,
                                        base_model_id=mine["base_model"])

    assert [run["id"] for run in api_as(viewer).get("/api/training-runs/").json()["results"]] \
        == [theirs.pk]
    assert api_as(viewer).get(f"/api/training-runs/{mine['id']}/").status_code == 404
    assert api_as(viewer).post(f"/api/training-runs/{mine['id']}/cancel/").status_code == 404
    for user in (editor, admin_user):
        listed = api_as(user).get("/api/training-runs/").json()["results"]
        assert {run["id"] for run in listed} == {mine["id"], theirs.pk}


def test_it_cancels_a_queued_run(api_as, editor, make_album, start_run):
    run = start_run(make_album())
    response = api_as(editor).post(f"/api/training-runs/{run['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"]


def test_it_retries_a_cancelled_run_and_refuses_to_retry_a_queued_one(
        api_as, editor, make_album, start_run, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    run = start_run(make_album())
    client = api_as(editor)
    assert client.post(f"/api/training-runs/{run['id']}/retry/").status_code == 409
    client.post(f"/api/training-runs/{run['id']}/cancel/")
    OrmQ.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/training-runs/{run['id']}/retry/")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["finished_at"]) == ("queued", None)
    assert OrmQ.objects.count() == 1


def test_it_refuses_to_retry_a_run_whose_album_was_emptied(api_as, editor, make_album,
                                                           start_run):
    album = make_album(1)
    run = start_run(album)
    TrainingRun.objects.filter(pk=run["id"]).update(status="failed")
    album.remove_images(album.images.all())

    response = api_as(editor).post(f"/api/training-runs/{run['id']}/retry/")

    assert response.status_code == 409
    assert "has no images" in response.json()["album"][0]
    assert TrainingRun.objects.get().status == "failed"


def test_a_retry_whose_base_model_was_retired_or_album_deleted_is_a_conflict(
        api_as, editor, make_album, start_run, demo_base):
    # The request names nothing of its own: what no longer passes is the state (409), as for
    # a job's remix.
    album = make_album(1)
    run = start_run(album)
    TrainingRun.objects.filter(pk=run["id"]).update(status="failed")
    demo_base.is_active = False
    demo_base.save(update_fields=["is_active"])

    response = api_as(editor).post(f"/api/training-runs/{run['id']}/retry/")

    assert response.status_code == 409, response.content
    assert response.json()["detail"] == CONFLICT_IN_REQUEST
    assert "active base model" in response.json()["base_model"][0]
    demo_base.is_active = True
    demo_base.save(update_fields=["is_active"])
    album.delete()
    response = api_as(editor).post(f"/api/training-runs/{run['id']}/retry/")
    assert response.status_code == 409, response.content
    assert "was deleted" in response.json()["album"][0]
    assert TrainingRun.objects.get().status == "failed"


def test_it_lists_the_validation_images_in_pairs(api_as, editor, make_album, start_run):
    from albums.models import Album

    album = make_album(2)
    run = TrainingRun.objects.get(pk=start_run(album)["id"])
    without_lora, with_lora = album.images.order_by("album_entries__position")
    validation = Album.objects.create(name="validation", owner=editor)
    validation.add_images([without_lora, with_lora])
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", validation_album=validation)

    body = api_as(editor).get(f"/api/training-runs/{run.pk}/").json()

    (pair,) = body["validation_images"]
    assert pair["without_lora"]["id"] == without_lora.pk
    assert pair["with_lora"]["id"] == with_lora.pk
    assert pair["with_lora"]["url"].endswith(f"/media/images/{with_lora.pk}/")
    assert pair["with_lora"]["thumbnail_url"].endswith(f"/media/images/{with_lora.pk}/thumbnail/")


def test_it_accepts_the_quick_settings_the_tests_use(make_album, editor, demo_base):
    from training.validation import validate_training

    cleaned = validate_training({"album": make_album(), "name": "quick", **QUICK}, user=editor)
    assert cleaned["base_model"] == demo_base


# Found by fuzzing the API (imagineer/tests/test_fuzz_api.py, `make fuzz`).


def test_it_refuses_a_status_filter_it_does_not_know(api_as, editor):
    response = api_as(editor).get("/api/training-runs/?status=done")
    assert response.status_code == 400
    assert list(response.json()) == ["status"]


def test_it_keeps_the_defaults_of_switches_a_form_leaves_out(api_as, editor, make_album,
                                                             demo_base):
    album = make_album()
    response = api_as(editor).post("/api/training-runs/", {"album": album.pk, "name": "form"},
                                   format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["center_crop"] is DEFAULTS["center_crop"] is True
    assert response.json()["random_flip"] is DEFAULTS["random_flip"] is False
    assert response.json()["train_convolutions"] is DEFAULTS["train_convolutions"] is False
