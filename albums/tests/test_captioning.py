"""Automatic captions: the task in a real worker on a tiny local model, the API, the page."""

import pytest
from django.core.files.storage import default_storage
from django_q.models import OrmQ

from albums import tasks
from albums.captioning import build_tiny_captioning_model
from albums.models import Album, CaptionRun, Label
from imagineer.testing import wait_for


@pytest.fixture
def wordless_captioner(tmp_path):
    """The tiny model, allowed to say nothing but spaces: every caption comes out empty."""
    from transformers import AutoTokenizer, GenerationConfig

    directory = build_tiny_captioning_model(tmp_path / "wordless")
    vocab = AutoTokenizer.from_pretrained(directory).get_vocab()
    config = GenerationConfig.from_pretrained(directory)
    allowed = {vocab["\u0120"], config.eos_token_id}  # "Ġ" is GPT-2's space
    config.suppress_tokens = sorted(set(vocab.values()) - allowed)
    config.save_pretrained(directory)
    return str(directory)


@pytest.fixture
def album(viewer):
    return Album.objects.create(name="Harbour", owner=viewer, visibility="public")


@pytest.mark.django_db(transaction=True)
def test_it_captions_an_albums_uncaptioned_images_in_a_real_worker(
    start_worker, tiny_captioner, api_as, viewer, album, make_image, settings
):
    settings.IMAGINEER_CAPTION_MODEL = tiny_captioner  # the web side's, and the worker's:
    images = [make_image(created_by=viewer, album=album) for _ in range(3)]
    images[1].set_caption("written by a person", by=viewer)
    start_worker(IMAGINEER_CAPTION_MODEL=tiny_captioner)
    client = api_as(viewer)

    response = client.post(f"/api/albums/{album.pk}/caption/")

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["total"] == 2
    status_url = response.json()["status_url"]
    assert response["Location"] == status_url

    def finished():
        run = client.get(status_url).json()
        return run if run["status"] in ("succeeded", "failed") else None

    run = wait_for(finished, timeout=180, message="the worker to finish the caption run")
    assert (run["status"], run["done"], run["total"], run["error"]) == (
        "succeeded", 2, 2, "")
    auto = Label.objects.filter(source=Label.Source.AUTO)
    assert sorted(auto.values_list("image_id", flat=True)) == [images[0].pk, images[2].pk]
    assert all(label.text and label.text == label.text.strip() for label in auto)
    assert {label.created_by for label in auto} == {viewer}
    assert images[1].caption == "written by a person"  # people's captions are kept


@pytest.mark.django_db
def test_it_leaves_images_the_model_finds_no_words_for_uncaptioned(
    settings, wordless_captioner, album, make_image, viewer, django_capture_on_commit_callbacks
):
    settings.IMAGINEER_CAPTION_MODEL = wordless_captioner
    image = make_image(created_by=viewer, album=album)
    run = CaptionRun.objects.create(album=album, created_by=viewer)

    tasks.caption_album(album.pk, run.pk)

    run.refresh_from_db()
    assert (run.status, run.done, run.total, run.empty) == ("succeeded", 1, 1, 1)
    assert not Label.objects.filter(image=image).exists()
    assert run.summary == (
        "Done: captioned 0 of 1 images; the model found no words for 1, left uncaptioned."
    )


@pytest.mark.django_db
def test_it_fails_the_run_naming_the_image_whose_file_is_gone(
    settings, tiny_captioner, album, make_image, viewer
):
    settings.IMAGINEER_CAPTION_MODEL = tiny_captioner
    first, broken = (make_image(created_by=viewer, album=album) for _ in range(2))
    default_storage.delete(broken.thumbnail.name)
    run = CaptionRun.objects.create(album=album, created_by=viewer)

    with pytest.raises(FileNotFoundError):  # the worker records the task as failed too
        tasks.caption_album(album.pk, run.pk)

    run.refresh_from_db()
    assert (run.status, run.done, run.total) == ("failed", 1, 2)
    assert run.error.startswith(f"image {broken.pk}: FileNotFoundError")
    assert first.caption  # what was done stays done
    assert run.finished_at is not None


@pytest.mark.django_db
def test_it_fails_the_run_when_the_model_cannot_be_loaded(settings, tmp_path, album,
                                                          make_image, viewer):
    settings.IMAGINEER_CAPTION_MODEL = str(tmp_path / "no-such-model")
    make_image(created_by=viewer, album=album)
    run = CaptionRun.objects.create(album=album, created_by=viewer)
    with pytest.raises(OSError):
        tasks.caption_album(album.pk, run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "no-such-model" in run.error


@pytest.mark.django_db
def test_it_returns_the_active_run_instead_of_queueing_another(
    settings, album, make_image, viewer, django_capture_on_commit_callbacks
):
    settings.IMAGINEER_CAPTION_MODEL = "some/captioner"
    make_image(created_by=viewer, album=album)
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.start_caption_run(album, by=viewer)
        again = tasks.start_caption_run(album, by=viewer)
    assert again == first
    assert OrmQ.objects.count() == 1
    first.start("elsewhere:1", total=1)
    first.succeed()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.start_caption_run(album, by=viewer) != first
    assert OrmQ.objects.count() == 2


WHO = ["anonymous", "vera", "otto", "editor"]
# album -> status per caller for POST /api/albums/{id}/caption/
START = {
    "vera_public": [401, 202, 403, 202],
    "vera_private": [401, 202, 404, 202],
}


@pytest.mark.django_db
@pytest.mark.parametrize("who", WHO)
def test_it_lets_the_owner_and_curators_start_captioning(
    who, settings, api_client, api_as, viewer, other_viewer, editor, album
):
    settings.IMAGINEER_CAPTION_MODEL = "some/captioner"
    albums = {"vera_public": album,
              "vera_private": Album.objects.create(name="Private", owner=viewer)}
    users = {"vera": viewer, "otto": other_viewer, "editor": editor}
    client = api_as(users[who]) if who in users else api_client
    got = {name: client.post(f"/api/albums/{a.pk}/caption/").status_code
           for name, a in albums.items()}
    assert got == {name: row[WHO.index(who)] for name, row in START.items()}


@pytest.mark.django_db
def test_it_answers_503_while_captioning_is_off(settings, api_as, viewer, album):
    settings.IMAGINEER_CAPTION_MODEL = ""
    response = api_as(viewer).post(f"/api/albums/{album.pk}/caption/")
    assert response.status_code == 503
    assert "IMAGINEER_CAPTION_MODEL" in response.json()["detail"]
    assert not CaptionRun.objects.exists()


@pytest.mark.django_db
def test_it_shows_a_runs_progress_to_those_who_may_curate_its_album(
    api_as, viewer, other_viewer, editor, album
):
    run = CaptionRun.objects.create(album=album, total=4)
    run.start("elsewhere:1", total=4)
    run.advance()
    admin_run = CaptionRun.objects.create(total=1)  # started from the admin: no album
    url = f"/api/caption-runs/{run.pk}/"

    data = api_as(viewer).get(url).json()
    assert (data["status"], data["done"], data["total"]) == ("running", 1, 4)
    assert data["summary"] == "Captioning: 1 of 4 images."
    assert api_as(other_viewer).get(url).status_code == 404
    assert api_as(editor).get(url).status_code == 200
    assert api_as(viewer).get(f"/api/caption-runs/{admin_run.pk}/").status_code == 404
    assert api_as(editor).get(f"/api/caption-runs/{admin_run.pk}/").status_code == 200


@pytest.mark.django_db
def test_it_starts_captioning_from_the_album_page_and_shows_progress(
    client, settings, viewer, other_viewer, album, make_image,
    django_capture_on_commit_callbacks,
):
    settings.IMAGINEER_CAPTION_MODEL = "some/captioner"
    make_image(created_by=viewer, album=album)
    client.force_login(viewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/albums/{album.slug}/caption/", follow=True)
    run = CaptionRun.objects.get()
    task = OrmQ.objects.get().task
    assert (task["func"], task["args"]) == ("albums.tasks.caption_album", (album.pk, run.pk))
    html = response.content.decode()
    assert f'data-caption-run="/api/caption-runs/{run.pk}/"' in html
    assert '<progress max="1" value="0">' in html
    assert "Queued: 1 images to caption." in html

    client.force_login(other_viewer)
    assert client.post(f"/albums/{album.slug}/caption/").status_code == 403
    assert CaptionRun.objects.count() == 1
