"""The pages: the album's train form, the runs, a run with its progress and loss chart."""

import re

import pytest
from django.contrib.auth import get_user_model

from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(get_user_model().objects.get(pk=user.pk))
        return client

    return sign_in


def form_data(**fields):
    data = {"name": "boards", "steps": 4, "rank": 4, "alpha": 4, "learning_rate": "0.001",
            "resolution": 64, "batch_size": 1, "gradient_accumulation": 1, "seed": 7,
            "checkpoint_every": 2, "center_crop": "on", "trigger_word": "chk",
            "validation_prompt": ""}
    data.update(fields)
    return data


def test_it_offers_the_train_form_with_sensible_defaults(signed_in, editor, make_album,
                                                        demo_base):
    album = make_album()
    response = signed_in(editor).get(f"/albums/{album.slug}/train/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Train a LoRA from this album" in page
    for name, value in [("name", "Boards LoRA"), ("rank", "8"), ("steps", "500"),
                        ("resolution", "512"), ("learning_rate", "0.0001"),
                        ("checkpoint_every", "100")]:
        assert re.search(rf'name="{name}" value="{value}"', page), name
    assert re.search(r'name="center_crop"[^>]*checked', page)


def test_it_starts_a_run_from_the_form(signed_in, editor, make_album, demo_base,
                                       django_capture_on_commit_callbacks):
    album = make_album()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(editor).post(f"/albums/{album.slug}/train/",
                                          form_data(train_convolutions="on"))

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/training/{run.pk}/"
    assert (run.album, run.owner, run.steps, run.learning_rate, run.center_crop,
            run.random_flip, run.train_convolutions) == (album, editor, 4, 0.001, True,
                                                         False, True)
    assert run.trainer_config().train_convolutions is True


def test_it_shows_the_rules_the_form_broke(signed_in, editor, make_album, demo_base):
    album = make_album(0)
    response = signed_in(editor).post(f"/albums/{album.slug}/train/",
                                      form_data(rank=500, resolution=100))

    page = response.content.decode()
    assert response.status_code == 200
    assert "rank must be between 1 and 128; got 500." in page
    assert "resolution must be a multiple of 8 between 64 and 1024; got 100." in page
    assert "album: Boards has no images; add some before training on it." in page
    assert not TrainingRun.objects.exists()


def test_it_keeps_viewers_from_the_train_form(signed_in, viewer, make_album, demo_base):
    album = make_album(owner=viewer)
    client = signed_in(viewer)

    assert client.get(f"/albums/{album.slug}/train/").status_code == 403
    assert client.post(f"/albums/{album.slug}/train/", form_data()).status_code == 403
    assert not TrainingRun.objects.exists()


def test_it_shows_a_runs_progress_and_loss_chart(signed_in, editor, make_album, start_run):
    run = TrainingRun.objects.get(pk=start_run(make_album())["id"])
    run.start("host:1")
    run.record_progress("host:1", current_step=2, losses=[[1, 1.1], [2, 0.9]],
                        log_tail="Training on 4 images")
    client = signed_in(editor)

    page = client.get(f"/training/{run.pk}/").content.decode()
    fragment = client.get(f"/training/{run.pk}/status/").content.decode()

    for html in (page, fragment):
        assert '<progress class="run-progress" value="0.475" max="1">' in html
        assert "step <span class=\"current-step\">2</span> of 4" in html
        assert '<polyline class="loss"' in html
        assert "Training on 4 images" in html
    # The fragment polls itself again (static/js/poll.js), as does the list of runs.
    assert f'data-poll="/training/{run.pk}/status/"' in fragment
    assert "js/poll.js" in page
    assert 'data-poll="/training/"' in client.get("/training/").content.decode()


def test_it_shows_the_lora_and_the_validation_images_of_a_finished_run(
        signed_in, editor, make_album, start_run, make_lora):
    from albums.models import Album

    album = make_album(2)
    run = TrainingRun.objects.get(pk=start_run(album)["id"])
    lora = make_lora(0)
    validation = Album.objects.create(name="validation", owner=editor)
    validation.add_images(album.images.order_by("album_entries__position"))
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", progress=1.0, lora=lora,
                                                 validation_album=validation)

    fragment = signed_in(editor).get(f"/training/{run.pk}/status/").content.decode()

    assert "data-poll" not in fragment  # finished: no more polling
    assert f'href="/generate/?lora_1={lora.pk}&amp;weight_1=1.0&amp;prompt=' in fragment
    assert "Generate with this LoRA" in fragment
    assert fragment.count('<figure><img src="/media/images/') == 2
    assert "Without the LoRA" in fragment and "With the LoRA" in fragment


def test_it_lists_runs_and_hides_other_users_runs(signed_in, editor, viewer, make_album,
                                                   start_run):
    run = start_run(make_album())

    assert f'href="/training/{run["id"]}/"' in signed_in(editor).get("/training/").content.decode()
    client = signed_in(viewer)
    assert f'/training/{run["id"]}/' not in client.get("/training/").content.decode()
    assert client.get(f"/training/{run['id']}/").status_code == 404


def test_it_cancels_and_retries_a_run_from_its_page(signed_in, editor, make_album, start_run):
    run = start_run(make_album())
    client = signed_in(editor)

    client.post(f"/training/{run['id']}/cancel/")
    assert TrainingRun.objects.get().status == "cancelled"
    client.post(f"/training/{run['id']}/retry/")
    assert TrainingRun.objects.get().status == "queued"


def test_it_serves_the_kohya_file_of_a_finished_run_only(signed_in, editor, make_album,
                                                         start_run):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    run = start_run(make_album())
    client = signed_in(editor)
    assert client.get(f"/training/{run['id']}/kohya.safetensors").status_code == 404

    name = default_storage.save(f"training/run-{run['id']}/kohya_lora.safetensors",
                                ContentFile(b"weights"))
    TrainingRun.objects.filter(pk=run["id"]).update(kohya_file=name)
    response = client.get(f"/training/{run['id']}/kohya.safetensors")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"weights"
    assert response["Content-Disposition"].startswith("attachment;")


def test_it_names_the_runs_owner_by_name_never_by_email(signed_in, editor, make_user,
                                                        make_album, start_run):
    run = start_run(make_album())
    other_editor = make_user("eddie", "editor")
    page = signed_in(other_editor).get(f"/training/{run['id']}/").content.decode()
    assert f"by {editor.username} on" in page
    assert editor.email not in page
