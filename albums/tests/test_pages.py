"""The gallery pages: album list, album page, image page, and their forms."""

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from albums import views as pages
from albums.models import Album, Image, Label

from .images import png_bytes

pytestmark = pytest.mark.django_db

RED, BLUE = png_bytes((250, 1, 1)), png_bytes((1, 1, 250))  # colors make_image does not use

WHO = ["anonymous", "gallery", "vera", "otto", "editor"]  # gallery: anonymous, gallery on
LOGIN = 302  # sent to sign in

# page -> status per caller
SEE = {
    "album_list": [LOGIN, 200, 200, 200, 200],
    "vera_private": [LOGIN, 404, 200, 404, 200],
    "vera_public": [LOGIN, 200, 200, 200, 200],
    "image_in_private": [LOGIN, 404, 200, 404, 200],
    "image_in_public": [LOGIN, 200, 200, 200, 200],
}


@pytest.fixture
def world(viewer, other_viewer, editor, make_image):
    private = Album.objects.create(name="Vera private", owner=viewer)
    public = Album.objects.create(name="Vera public", owner=viewer, visibility="public")
    return {
        "users": {"vera": viewer, "otto": other_viewer, "editor": editor},
        "private": private,
        "public": public,
        "image_in_private": make_image(created_by=viewer, album=private),
        "image_in_public": make_image(created_by=viewer, album=public),
    }


@pytest.fixture
def as_(world, client, settings):
    def sign_in(who):
        settings.IMAGINEER_PUBLIC_GALLERY = who == "gallery"
        client.logout()
        if who in world["users"]:
            client.force_login(world["users"][who])
        return client

    return sign_in


@pytest.mark.parametrize("who", WHO)
def test_it_shows_pages_to_those_who_may_see_them(as_, world, who):
    urls = {
        "album_list": "/albums/",
        "vera_private": f"/albums/{world['private'].slug}/",
        "vera_public": f"/albums/{world['public'].slug}/",
        "image_in_private": f"/images/{world['image_in_private'].pk}/",
        "image_in_public": f"/images/{world['image_in_public'].pk}/",
    }
    client = as_(who)
    got = {name: client.get(url).status_code for name, url in urls.items()}
    assert got == {name: row[WHO.index(who)] for name, row in SEE.items()}


def test_it_sends_anonymous_visitors_to_sign_in_and_back(client):
    response = client.get("/albums/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/albums/"


def test_it_lists_the_albums_one_may_see_as_a_grid_of_covers(as_, world, make_image):
    Album.objects.create(name="Otto private", owner=world["users"]["otto"])
    cover = make_image(nsfw=True)
    world["public"].add_images([cover])
    world["public"].cover = cover
    world["public"].save()

    response = as_("vera").get("/albums/")

    names = [album.name for album in response.context["page"]]
    assert sorted(names) == ["Vera private", "Vera public"]
    html = response.content.decode()
    assert f'src="/media/images/{cover.pk}/thumbnail/"' in html
    assert f'src="/media/images/{world["image_in_private"].pk}/thumbnail/"' in html
    assert html.count('class="card nsfw"') == 1  # the NSFW cover is blurred
    assert "<style" not in html and "style=" not in html and "<script>" not in html


def test_it_creates_an_album_owned_by_the_caller(as_, world):
    response = as_("otto").post("/albums/", {"name": "Sunsets", "visibility": "private"})
    album = Album.objects.get(name="Sunsets")
    assert response.status_code == 302
    assert response["Location"] == f"/albums/{album.slug}/"
    assert album.slug.startswith("sunsets-")
    assert album.owner == world["users"]["otto"]


def test_it_refuses_an_album_without_a_name(as_, world):
    response = as_("otto").post("/albums/", {"name": "", "visibility": "private"})
    assert response.status_code == 200
    assert response.context["form"].errors == {"name": ["This field is required."]}
    assert not Album.objects.filter(owner=world["users"]["otto"]).exists()


def test_it_shows_an_albums_images_lazy_loaded_in_order_and_paginated(
    as_, world, make_image, monkeypatch
):
    monkeypatch.setattr(pages, "IMAGES_PER_PAGE", 2)
    album = world["public"]
    more = [make_image(), make_image(nsfw=True)]
    album.add_images(more)
    first = world["image_in_public"]
    album.reorder([more[1].pk, first.pk, more[0].pk])
    client = as_("otto")

    page_1 = client.get(f"/albums/{album.slug}/")
    page_2 = client.get(f"/albums/{album.slug}/?page=2")

    assert [i.pk for i in page_1.context["page"]] == [more[1].pk, first.pk]
    assert [i.pk for i in page_2.context["page"]] == [more[0].pk]
    html = page_1.content.decode()
    assert html.count('loading="lazy"') == 2
    assert html.count('class="card nsfw"') == 1
    assert 'href="?page=2"' in html
    assert "<style" not in html and "style=" not in html and "<script>" not in html


def test_it_offers_upload_and_captioning_to_curators_only(as_, world, settings):
    settings.IMAGINEER_CAPTION_MODEL = "some/model"
    url = f"/albums/{world['public'].slug}/"

    def offers(who):
        html = as_(who).get(url).content.decode()
        return (f'action="{url}upload/"' in html, "Caption all uncaptioned images" in html)

    assert offers("vera") == (True, True)  # the owner
    assert offers("editor") == (True, True)
    assert offers("otto") == (False, False)
    assert offers("gallery") == (False, False)


def test_it_hides_the_caption_button_while_captioning_is_off(as_, world, settings):
    settings.IMAGINEER_CAPTION_MODEL = ""
    html = as_("vera").get(f"/albums/{world['public'].slug}/").content.decode()
    assert "Caption all uncaptioned images" not in html


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_it_keeps_the_query_count_of_an_album_page_whatever_its_size(
    as_, world, make_image, monkeypatch
):
    album = world["public"]
    client = as_("editor")
    monkeypatch.setattr(pages, "IMAGES_PER_PAGE", 2)
    small = count_queries(client, f"/albums/{album.slug}/")
    for n in range(6):
        make_image(caption=f"caption {n}", album=album, nsfw=n % 2 == 0)
    monkeypatch.setattr(pages, "IMAGES_PER_PAGE", 6)
    assert count_queries(client, f"/albums/{album.slug}/") == small


def test_it_keeps_the_query_count_of_the_album_list_whatever_the_number_of_albums(
    as_, world, make_image
):
    client = as_("vera")
    few = count_queries(client, "/albums/")
    for n in range(5):
        album = Album.objects.create(name=f"More {n}", owner=world["users"]["vera"])
        make_image(album=album)
    assert count_queries(client, "/albums/") == few


def test_it_shows_an_images_metadata_albums_and_caption(as_, world, make_image):
    image = make_image(
        created_by=world["users"]["vera"], caption="a red square", album=world["public"],
        prompt="a red square, studio light", params={"steps": 25, "seed": 7},
    )
    world["private"].add_images([image])
    Album.objects.create(name="Otto private", owner=world["users"]["otto"]).add_images([image])

    response = as_("vera").get(f"/images/{image.pk}/")

    html = response.content.decode()
    assert f'src="/media/images/{image.pk}/"' in html
    for text in ["64 × 48 px", "PNG", "Upload", "a red square, studio light", "steps",
                 "25", "seed", image.sha256]:
        assert text in html
    assert [a.name for a in response.context["albums"]] == ["Vera private", "Vera public"]
    assert "a red square</p>" in html  # viewers read the caption, no editor
    assert response.context["caption_form"] is None


def test_it_sets_the_caption_from_the_editor(as_, world):
    image = world["image_in_public"]
    response = as_("editor").post(f"/images/{image.pk}/", {"text": "  a cat on a mat "})
    assert response.status_code == 302
    label = Label.objects.get(image=image)
    assert (label.text, label.source, label.created_by) == (
        "a cat on a mat", Label.Source.MANUAL, world["users"]["editor"]
    )
    assert Image.objects.get(pk=image.pk).caption == "a cat on a mat"


def test_it_refuses_an_empty_caption_naming_the_field(as_, world):
    image = world["image_in_public"]
    response = as_("editor").post(f"/images/{image.pk}/", {"text": "   "})
    assert response.status_code == 200
    assert response.context["caption_form"].errors == {"text": ["This field is required."]}
    assert not Label.objects.exists()


def test_it_lets_only_curators_edit_captions(as_, world):
    image = world["image_in_public"]
    assert as_("vera").get(f"/images/{image.pk}/").context["caption_form"] is None
    assert as_("vera").post(f"/images/{image.pk}/", {"text": "mine"}).status_code == 403
    assert not Label.objects.exists()


def test_it_adds_an_image_to_an_album_the_caller_curates(as_, world):
    image = world["image_in_public"]
    client = as_("vera")
    assert list(client.get(f"/images/{image.pk}/").context["album_form"]
                .fields["album"].queryset) == [world["private"]]

    response = client.post(f"/images/{image.pk}/albums/", {"album": world["private"].pk})

    assert response.status_code == 302
    assert world["private"].images.filter(pk=image.pk).exists()


def test_it_refuses_to_add_to_another_users_album(as_, world):
    image = world["image_in_public"]
    response = as_("otto").post(f"/images/{image.pk}/albums/", {"album": world["public"].pk},
                                follow=True)
    assert "Album: choose one of the albums you may change." in response.content.decode()
    assert world["public"].images.count() == 1


def upload(client, album, *files):
    return client.post(f"/albums/{album.slug}/upload/", {"file": list(files)}, follow=True)


def named(data, name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_it_uploads_images_into_the_album(as_, world):
    album = world["private"]
    response = upload(as_("vera"), album, named(RED, "a.png"),
                      named(BLUE, "b.png"))

    assert "Uploaded 2 images to Vera private." in response.content.decode()
    new = Image.objects.filter(album_entries__album=album).exclude(
        pk=world["image_in_private"].pk)
    assert new.count() == 2
    assert {image.created_by for image in new} == {world["users"]["vera"]}
    assert {image.source for image in new} == {Image.Source.UPLOAD}


def test_it_reuses_an_image_uploaded_twice(as_, world):
    client = as_("vera")
    upload(client, world["private"], named(RED, "a.png"))
    count = Image.objects.count()
    response = upload(client, world["public"], named(RED, "again.png"))
    assert "1 you had uploaded before" in response.content.decode()
    assert Image.objects.count() == count
    image = Image.objects.get(sha256=hashlib.sha256(RED).hexdigest())
    assert set(image.albums.all()) == {world["private"], world["public"]}


def test_it_stores_nothing_when_one_upload_is_bad(as_, world, stored_state):
    before = stored_state()
    response = upload(as_("vera"), world["private"], named(RED, "good.png"),
                      named(b"not an image", "notes.txt"))
    assert "Nothing was uploaded: notes.txt: not a PNG, JPEG or WebP image" in (
        response.content.decode())
    assert stored_state() == before


def test_it_lets_only_curators_upload(as_, world, stored_state):
    before = stored_state()
    response = upload(as_("otto"), world["public"], named(RED, "a.png"))
    assert response.status_code == 403
    assert upload(as_("otto"), world["private"], named(RED, "a.png")
                  ).status_code == 404
    assert stored_state() == before


@pytest.mark.parametrize("who", ["gallery", "otto", "editor"])
def test_it_names_people_by_name_never_by_email(as_, world, who):
    vera = world["users"]["vera"]
    urls = ["/albums/", f"/albums/{world['public'].slug}/",
            f"/images/{world['image_in_public'].pk}/"]
    for url in urls:
        page = as_(who).get(url).content.decode()
        assert vera.email not in page, url
        assert "vera" in page.replace("Vera public", ""), url  # the username instead
    vera.first_name, vera.last_name = "Vera", "Lynn"
    vera.save()
    for url in urls:
        page = as_(who).get(url).content.decode()
        assert "Vera Lynn" in page and vera.email not in page, url


def test_it_counts_pages_only_a_few_past_the_one_shown(world):
    from core.pagination import CappedPaginator

    for number in range(7):
        Album.objects.create(name=f"album {number}", owner=world["users"]["otto"])
    albums = Album.objects.order_by("pk")
    total = albums.count()
    first = CappedPaginator(albums, 2, ahead=1)
    page = first.get_page(1)
    assert (first.count, first.num_pages, first.capped) == (4, 2, True)
    assert page.has_next() and [a.pk for a in page] == [a.pk for a in albums[:2]]
    deep = CappedPaginator(albums, 2, ahead=1)
    page = deep.get_page(9)  # past the end: the last page, counted exactly
    assert (deep.count, deep.capped) == (total, False)
    assert page.number == deep.num_pages and not page.has_next()
