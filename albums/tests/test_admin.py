"""Curation in the admin: the image list, its filters and bulk actions, the album admin."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from albums.models import Album, CaptionRun, Image, Label

pytestmark = pytest.mark.django_db

IMAGES = "/admin/albums/image/"


@pytest.fixture
def album(viewer):
    return Album.objects.create(name="Holiday", owner=viewer)


@pytest.fixture
def as_editor(client, editor):
    client.force_login(editor)
    return client


def listed(response):
    return sorted(image.pk for image in response.context["cl"].result_list)


def act(client, action, images, **data):
    return client.post(
        IMAGES, {"action": action, "_selected_action": [i.pk for i in images], **data}
    )


def test_it_keeps_viewers_out_of_the_admin(client, viewer):
    client.force_login(viewer)
    response = client.get(IMAGES)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_lists_images_with_thumbnails_and_captions(as_editor, make_image):
    image = make_image(caption="a lighthouse at dusk")
    html = as_editor.get(IMAGES).content.decode()
    assert f'src="/media/images/{image.pk}/thumbnail/"' in html
    assert "a lighthouse at dusk" in html


def test_it_lists_images_in_a_fixed_number_of_queries(as_editor, make_image, album):
    make_image(caption="one", album=album)
    with CaptureQueriesContext(connection) as few:
        as_editor.get(IMAGES)
    for n in range(5):
        make_image(caption=f"more {n}", album=album, created_by=album.owner)
    with CaptureQueriesContext(connection) as many:
        response = as_editor.get(IMAGES)
    assert len(response.context["cl"].result_list) == 6
    assert len(many) == len(few)


def test_it_filters_images_by_source_album_nsfw_and_caption(as_editor, make_image, album):
    captioned = make_image(caption="a cat", album=album)
    nsfw = make_image(nsfw=True, source=Image.Source.GENERATED)
    blank = make_image()
    blank.set_caption("")  # a blank newest caption counts as none

    assert listed(as_editor.get(IMAGES, {"captioned": "yes"})) == [captioned.pk]
    assert listed(as_editor.get(IMAGES, {"captioned": "no"})) == [nsfw.pk, blank.pk]
    assert listed(as_editor.get(IMAGES, {"albums__id__exact": album.pk})) == [captioned.pk]
    assert listed(as_editor.get(IMAGES, {"nsfw__exact": "1"})) == [nsfw.pk]
    assert listed(as_editor.get(IMAGES, {"source__exact": "generated"})) == [nsfw.pk]


def test_it_searches_prompts_and_captions_with_the_apis_search(as_editor, make_image):
    by_prompt = make_image(prompt="a castle in the fog")
    by_caption = make_image(caption="fog over a harbour")
    sunny = make_image(caption="sunny beach")
    with CaptureQueriesContext(connection) as queries:
        assert listed(as_editor.get(IMAGES, {"q": "fog"})) == [by_prompt.pk, by_caption.pk]
    index = "albums_image_fts" if connection.vendor == "sqlite" else "search_document"
    assert any(index in query["sql"] for query in queries)  # albums.search, not LIKE
    assert listed(as_editor.get(IMAGES, {"q": "cast"})) == [by_prompt.pk]  # as one types
    assert listed(as_editor.get(IMAGES, {"q": "fog harb"})) == [by_caption.pk]
    assert listed(as_editor.get(IMAGES, {"q": "og"})) == []  # words, not any part
    assert listed(as_editor.get(IMAGES, {"q": sunny.sha256.upper()})) == [sunny.pk]
    assert listed(as_editor.get(IMAGES, {"q": "fog", "source__exact": "import"})) == []


def test_it_shows_labels_inline_on_the_image(as_editor, make_image, editor):
    image = make_image(caption="first words")
    image.set_caption("better words", by=editor, source=Label.Source.AUTO)
    html = as_editor.get(f"{IMAGES}{image.pk}/change/").content.decode()
    assert "first words" in html and "better words" in html
    assert f'src="/media/images/{image.pk}/thumbnail/"' in html


def test_it_adds_a_caption_through_the_labels_inline(as_editor, make_image, editor):
    image = make_image(caption="first words")
    response = as_editor.post(f"{IMAGES}{image.pk}/change/", {
        "prompt": "", "params": "{}",
        "labels-TOTAL_FORMS": "2", "labels-INITIAL_FORMS": "1",
        "labels-MIN_NUM_FORMS": "0", "labels-MAX_NUM_FORMS": "1000",
        "labels-0-id": image.labels.get().pk, "labels-0-image": image.pk,
        "labels-0-text": "first words", "labels-0-kind": "caption", "labels-0-source": "manual",
        "labels-1-id": "", "labels-1-image": image.pk,
        "labels-1-text": "better words", "labels-1-kind": "caption", "labels-1-source": "manual",
        "_save": "Save",
    })
    assert response.status_code == 302
    newest = image.labels.first()
    assert (newest.text, newest.created_by) == ("better words", editor)
    assert Image.objects.with_caption().get(pk=image.pk).caption == "better words"


def test_it_adds_images_to_an_album_chosen_on_an_intermediate_page(
    as_editor, make_image, album, editor
):
    images = [make_image(), make_image()]

    page = act(as_editor, "add_to_album", images)
    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "admin/albums/choose_album.html"
    assert list(page.context["images"]) == images
    assert album.images.count() == 0  # nothing changes before the album is chosen

    done = act(as_editor, "add_to_album", images, apply="1", album=album.pk)
    assert done.status_code == 302
    assert list(album.entries.values_list("image_id", "added_by")) == [
        (images[0].pk, editor.pk), (images[1].pk, editor.pk)
    ]


def test_it_asks_again_when_no_album_is_chosen(as_editor, make_image, album):
    image = make_image()
    page = act(as_editor, "add_to_album", [image], apply="1", album="")
    assert page.context["form"].errors == {"album": ["This field is required."]}
    assert album.images.count() == 0


def test_it_removes_images_from_an_album(as_editor, make_image, album):
    keep, drop = make_image(album=album), make_image(album=album)
    page = act(as_editor, "remove_from_album", [drop])
    assert page.context["title"] == "Remove from an album"
    act(as_editor, "remove_from_album", [drop], apply="1", album=album.pk)
    assert list(album.images.all()) == [keep]
    assert Image.objects.filter(pk=drop.pk).exists()  # the image itself stays


def test_it_marks_and_unmarks_images_nsfw(as_editor, make_image):
    one, two, other = make_image(), make_image(), make_image()
    act(as_editor, "mark_nsfw", [one, two])
    assert set(Image.objects.filter(nsfw=True)) == {one, two}
    act(as_editor, "unmark_nsfw", [two, other])
    assert set(Image.objects.filter(nsfw=True)) == {one}


def test_it_queues_captioning_of_the_uncaptioned_selected_images(
    as_editor, make_image, settings, django_capture_on_commit_callbacks, editor
):
    settings.IMAGINEER_CAPTION_MODEL = "some/captioner"
    captioned, bare = make_image(caption="kept as is"), make_image()
    with django_capture_on_commit_callbacks(execute=True):
        act(as_editor, "caption_automatically", [captioned, bare])
    run = CaptionRun.objects.get()
    assert (run.album, run.total, run.status, run.created_by) == (None, 1, "queued", editor)
    task = OrmQ.objects.get().task
    assert (task["func"], task["args"]) == ("albums.tasks.caption_images", ([bare.pk], run.pk))


def test_it_says_when_captioning_is_off(as_editor, make_image, settings):
    settings.IMAGINEER_CAPTION_MODEL = ""
    response = act(as_editor, "caption_automatically", [make_image()])
    assert not CaptionRun.objects.exists()
    response = as_editor.get(response["Location"])
    assert "Automatic captioning is off" in response.content.decode()


def test_it_deletes_images_and_their_files_in_bulk(
    as_editor, make_image, media_files, django_capture_on_commit_callbacks
):
    doomed, kept = [make_image(), make_image()], make_image()
    with django_capture_on_commit_callbacks(execute=True):
        act(as_editor, "delete_selected", doomed, post="yes")
    assert list(Image.objects.all()) == [kept]
    assert media_files() == sorted([kept.file.name, kept.thumbnail.name])


def test_it_shows_an_albums_images_in_order_and_its_cover(as_editor, make_image, album):
    images = [make_image(album=album) for _ in range(3)]
    album.reorder([images[2].pk, images[0].pk])
    album.cover = images[1]
    album.save()

    response = as_editor.get(f"/admin/albums/album/{album.pk}/change/")

    inline = response.context["inline_admin_formsets"][0]
    assert [form.original.image_id for form in inline] == [
        images[2].pk, images[0].pk, images[1].pk
    ]
    html = response.content.decode()
    assert f'class="admin-preview" src="/media/images/{images[1].pk}/thumbnail/"' in html
    for image in images:
        assert f'src="/media/images/{image.pk}/thumbnail/"' in html


def test_it_lists_albums_with_covers_and_counts(as_editor, make_image, album):
    make_image(album=album)
    cover = make_image(album=album)
    album.cover = cover
    album.save()
    response = as_editor.get("/admin/albums/album/")
    (row,) = response.context["cl"].result_list
    assert (row.image_count, row.cover_image_id) == (2, cover.pk)
    assert f'src="/media/images/{cover.pk}/thumbnail/"' in response.content.decode()
