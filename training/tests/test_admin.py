"""The TrainingRun admin: the list, the loss chart, adding a run, cancel and retry."""

import pytest
from django_q.models import OrmQ

from training.models import TrainingRun

pytestmark = pytest.mark.django_db

RUNS = "/admin/training/trainingrun/"


@pytest.fixture
def as_editor(client, editor):
    client.force_login(editor)
    return client


def act(client, action, runs):
    return client.post(RUNS, {"action": action, "_selected_action": [run.pk for run in runs]})


def test_it_lists_runs_with_status_progress_album_and_lora(as_editor, make_album, start_run,
                                                          make_lora):
    run = TrainingRun.objects.get(pk=start_run(make_album())["id"])
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", progress=1.0,
                                                 current_step=4, lora=make_lora(0))

    page = as_editor.get(RUNS).content.decode()

    assert '<progress value="1.000" max="1"></progress> 4/4' in page
    assert "succeeded" in page and "Boards" in page and "lora0" in page


def test_it_shows_the_loss_chart_read_only(as_editor, make_album, start_run):
    run = TrainingRun.objects.get(pk=start_run(make_album())["id"])
    TrainingRun.objects.filter(pk=run.pk).update(losses=[[1, 1.2], [2, 1.0]])

    page = as_editor.get(f"{RUNS}{run.pk}/change/").content.decode()

    assert '<polyline class="loss"' in page
    assert 'name="rank"' not in page  # a run's settings never change


def test_it_adds_a_run_checked_like_the_api(as_editor, editor, make_album, demo_base,
                                            django_capture_on_commit_callbacks):
    album = make_album()
    data = {"name": "from the admin", "album": album.pk, "base_model": "", "rank": 4,
            "alpha": 4, "learning_rate": 0.001, "steps": 3, "batch_size": 1,
            "gradient_accumulation": 1, "resolution": 60, "seed": "", "trigger_word": "",
            "center_crop": "on", "checkpoint_every": 0, "validation_prompt": ""}

    response = as_editor.post(f"{RUNS}add/", data)
    assert response.status_code == 200
    assert "resolution must be between 64 and 1024; got 60." in \
        response.content.decode()
    assert not TrainingRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = as_editor.post(f"{RUNS}add/", {**data, "resolution": 64})
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert (run.owner, run.base_model, run.resolution) == (editor, demo_base, 64)
    assert OrmQ.objects.filter(key="training").count() == 1


def test_it_cancels_and_retries_runs(as_editor, make_album, start_run):
    album = make_album()
    runs = [TrainingRun.objects.get(pk=start_run(album)["id"]) for _ in range(2)]

    act(as_editor, "cancel_runs", runs)
    assert set(TrainingRun.objects.values_list("status", flat=True)) == {"cancelled"}
    act(as_editor, "retry_runs", runs[:1])
    assert TrainingRun.objects.get(pk=runs[0].pk).status == "queued"
    assert TrainingRun.objects.get(pk=runs[1].pk).status == "cancelled"


def test_it_keeps_viewers_out(client, viewer):
    client.force_login(viewer)
    assert client.get(RUNS).status_code == 302
