"""Scrape runs against a small site that the test serves on loopback (a threaded
http.server): pages linking pages and images, a robots.txt forbidding a path, a redirect
loop, a redirect to a private address, an image that is really HTML, a huge image, a slow
answer. Results compared file by file and row by row; in a real worker; killed and resumed.
"""

import hashlib
import time
from urllib.parse import urlsplit

import pytest
from django.core import checks
from django.core.files.storage import default_storage

from albums import scrape
from albums.fetch import Fetcher, FetchPolicy, Refused, check_address, parse_page
from albums.models import Album, AlbumImage, Image, ScrapeRun
from albums.tests.images import png_bytes
from imagineer.testing import LocalServer, wait_for

HTML = {"Content-Type": "text/html; charset=utf-8"}
PNG = {"Content-Type": "image/png"}
RED, BLUE, GREEN = png_bytes((200, 0, 0)), png_bytes((0, 0, 200)), png_bytes((0, 200, 0))
TINY = png_bytes((9, 9, 9), size=(4, 4))
MAX_BYTES = 50_000


def noise_png(size):
    import io

    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.effect_noise(size, 60).convert("RGB").save(out, "PNG")
    return out.getvalue()


HUGE = noise_png((300, 300))  # a real PNG over the byte limit
assert len(HUGE) > MAX_BYTES


def site(slow_seconds=3.0, image_delay=0.0):
    """The test site: a handler for LocalServer."""
    pages = {
        "/robots.txt": (200, {"Content-Type": "text/plain"},
                        b"User-agent: *\nDisallow: /private/\n"),
        "/": (200, HTML, b"""<html><body>
            <a href="/page2.html">next</a> <a href="/private/secret.html">secret</a>
            <a href="/loop1">loop</a> <a href="/to-private">inside</a>
            <a href="http://elsewhere.invalid/">another site</a> <a href="mailto:x@y.z">mail</a>
            <img src="/img/red.png" alt="A red  square" title="ignored: alt comes first">
            <figure><img src="img/blue.png"><figcaption>Blue, <em>in</em> a figure</figcaption>
            </figure>
            <img src="/img/fake.png" title="really a web page">
            <img src="/img/huge.png" alt="too big"> <img src="/img/slow.png" alt="slow">
            <img src="/private/p.png" alt="forbidden"> <img src="/img/red.png#again">
            <img src="/img/tiny.png" alt="tiny"></body></html>"""),
        "/page2.html": (200, HTML, b"""<p><img src="/img/green.png" title="Green title">
            <a href="/">home</a> <a href="/page3.html">deeper</a></p>"""),
        "/page3.html": (200, HTML, b'<img src="/img/deep.png" alt="too deep">'),
        "/private/secret.html": (200, HTML, b'<img src="/img/secret.png">'),
        "/loop1": (302, {"Location": "/loop2"}, b""),
        "/loop2": (302, {"Location": "http://127.0.0.1:%d/loop1"}, b""),
        "/to-private": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/img/red.png": (200, PNG, RED),
        "/img/blue.png": (200, PNG, BLUE),
        "/img/green.png": (200, PNG, GREEN),
        "/img/tiny.png": (200, PNG, TINY),
        "/img/fake.png": (200, PNG, b"<html><script>alert(1)</script></html>"),
        "/img/huge.png": (200, PNG, HUGE),
        "/private/p.png": (200, PNG, RED),
    }

    def handle(request):
        path = urlsplit(request.path).path
        if path == "/img/slow.png":
            time.sleep(slow_seconds)
            return 200, PNG, png_bytes((5, 5, 5))
        if path.startswith("/img/") and image_delay:
            time.sleep(image_delay)
        status, headers, body = pages.get(path, (404, HTML, b"not here"))
        if "Location" in headers and "%d" in headers["Location"]:
            headers = {"Location": headers["Location"] % handle.port}
        return status, headers, body

    return handle


@pytest.fixture
def served():
    handler = site()
    with LocalServer(handler) as server:
        handler.port = server.httpd.server_port
        yield server


@pytest.fixture
def scrape_settings(settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True
    settings.IMAGINEER_SCRAPE_HOST_DELAY = 0
    settings.IMAGINEER_SCRAPE_TIMEOUT = 1
    settings.IMAGINEER_SCRAPE_MAX_BYTES = MAX_BYTES
    return settings


WORKER_ENV = {"IMAGINEER_SCRAPE_ALLOW_LOOPBACK": "1", "IMAGINEER_SCRAPE_HOST_DELAY": "0",
              "IMAGINEER_SCRAPE_TIMEOUT": "1", "IMAGINEER_SCRAPE_MAX_BYTES": str(MAX_BYTES)}

EXPECTED_REFUSED = {"robots": 2, "redirect-loop": 1, "address": 1, "not-accepted": 1,
                    "too-large": 1, "timeout": 1, "too-small": 1}


def expected_rows(base):
    """(source_url, source_page, caption, caption source) of each kept image, album order."""
    return [
        (f"{base}/img/red.png", f"{base}/", "A red square", "scraped"),
        (f"{base}/img/blue.png", f"{base}/", "Blue, in a figure", "scraped"),
        (f"{base}/img/green.png", f"{base}/page2.html", "Green title", "scraped"),
    ]


def stored_rows(album):
    return [(entry.image.source_url, entry.image.source_page, entry.image.caption,
             entry.image.labels.get().source)
            for entry in AlbumImage.objects.filter(album=album).select_related("image")]


def expected_files():
    names = []
    for data in (RED, BLUE, GREEN):
        sha = hashlib.sha256(data).hexdigest()
        names += [f"images/{sha[:2]}/{sha}.png", f"thumbnails/{sha[:2]}/{sha}.webp"]
    return sorted(names)


def assert_scraped(run, base, media_files):
    assert (run.status, run.pages_visited, run.images_found, run.images_kept) == (
        "succeeded", 2, 8, 3)
    assert run.refused == EXPECTED_REFUSED
    assert run.frontier == []
    assert stored_rows(run.album) == expected_rows(base)
    assert Image.objects.count() == 3
    assert set(Image.objects.values_list("source", flat=True)) == {"scrape"}
    assert set(Image.objects.values_list("created_by", flat=True)) == {run.created_by_id}
    assert media_files() == expected_files()
    served_bytes = {hashlib.sha256(d).hexdigest(): d for d in (RED, BLUE, GREEN)}
    for image in Image.objects.all():
        with default_storage.open(image.file.name, "rb") as f:
            assert f.read() == served_bytes[image.sha256]  # byte for byte what was served
    reasons = {url: reason for url, reason, _ in run.refusals}
    assert reasons == {
        f"{base}/private/secret.html": "robots", f"{base}/private/p.png": "robots",
        f"{base}/loop1": "redirect-loop", f"{base}/to-private": "address",
        f"{base}/img/fake.png": "not-accepted", f"{base}/img/huge.png": "too-large",
        f"{base}/img/slow.png": "timeout", f"{base}/img/tiny.png": "too-small"}


# --- The fetcher alone ---------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1",
                                     "169.254.169.254", "224.0.0.1", "240.0.0.1", "0.0.0.0",  # noqa: S104
                                     "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "100.64.0.1"])
def test_it_refuses_addresses_that_are_not_public(address):
    with pytest.raises(Refused) as refused:
        check_address(address)
    assert refused.value.reason == "address"


def test_it_allows_loopback_only_when_told_and_public_addresses_always():
    check_address("127.0.0.1", allow_loopback=True)
    check_address("93.184.216.34")
    check_address("2606:2800:220:1:248:1893:25c8:1946")
    with pytest.raises(Refused):
        check_address("10.0.0.1", allow_loopback=True)


def test_it_refuses_other_schemes_and_loopback_by_default():
    fetcher = Fetcher(FetchPolicy(user_agent="t", max_bytes=1000))
    for url, reason in [("file:///etc/passwd", "scheme"), ("gopher://x/", "scheme"),
                        ("http://127.0.0.1:9/", "address"), ("http://localhost:9/", "address"),
                        ("http://[::1/", "scheme"), ("http://h.test:99999/", "scheme")]:
        with pytest.raises(Refused) as refused:
            fetcher.get(url)
        assert refused.value.reason == reason, url


def test_it_sends_its_user_agent_and_waits_between_requests_to_a_host(served):
    sleeps = []
    fetcher = Fetcher(FetchPolicy(user_agent="TestBot/1", max_bytes=MAX_BYTES, host_delay=5,
                                  allow_loopback=True), sleep=sleeps.append)
    assert fetcher.get(served.url + "/img/red.png").body == RED
    assert fetcher.get(served.url + "/img/blue.png").body == BLUE
    assert {r.headers["user-agent"] for r in served.requests} == {"TestBot/1"}
    assert [r.path for r in served.requests] == ["/robots.txt", "/img/red.png", "/img/blue.png"]
    assert len(sleeps) == 2 and all(4 < s <= 5 for s in sleeps)  # before the 2nd and 3rd


def test_it_parses_links_and_the_text_of_images():
    page = parse_page(site()(type("R", (), {"path": "/"}))[2].decode(), "http://s.test/")
    assert [(i.url, i.text) for i in page.images][:3] == [
        ("http://s.test/img/red.png", "A red square"),
        ("http://s.test/img/blue.png", "Blue, in a figure"),
        ("http://s.test/img/fake.png", "really a web page")]
    assert page.images[6].url == "http://s.test/img/red.png"  # the fragment dropped
    assert "http://s.test/page2.html" in page.links and "mailto:x@y.z" in page.links
    broken = parse_page('<a href="http://[::1/">x</a><img src="http://h:99999/a.png">'
                        '<a href="/ok">ok</a>', "http://s.test/")
    assert (broken.links, broken.images) == (["http://s.test/ok"], [])


@pytest.mark.django_db
def test_the_api_refuses_a_body_that_is_not_an_object(api_as, editor):
    response = api_as(editor).post("/api/scrape-runs/", ["https://example.org/"],
                                   format="json")
    assert response.status_code == 400
    assert not ScrapeRun.objects.exists()


# --- Validation ----------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("data, field, message", [
    ({"start_url": "ftp://x.org/"}, "start_url", "An http or https URL"),
    ({"start_url": ""}, "start_url", "Required"),
    ({"start_url": "http://10.0.0.1/"}, "start_url", "Not a public address"),
    ({"depth": 4}, "depth", "A whole number from 0 to 3; got 4."),
    ({"depth": "two"}, "depth", "A valid integer is required."),  # a JSON number
    ({"depth": "2"}, "depth", "A valid integer is required."),
    ({"max_images": 0}, "max_images", "A whole number from 1 to 1000; got 0."),
    ({"max_images": 1001}, "max_images", "A whole number from 1 to 1000; got 1001."),
    ({"min_width": -1}, "min_width", "A whole number from 0 to 10000; got -1."),
    ({"same_site": "maybe"}, "same_site", "Must be a valid boolean."),  # JSON true or false
    ({"album_name": ""}, "album", "Give an album's id, or album_name"),
    ({"colour": "red"}, "colour", "Unknown field."),
    ({"start_url": "http://[::1/"}, "start_url", "Not a valid URL."),
    ({"start_url": "http://example.org:99999/"}, "start_url", "Not a valid URL."),
    ({"start_url": ["https://example.org/"]}, "start_url", "Enter a valid URL."),
    ({"album": {"id": 1}}, "album", "A valid integer is required."),
])
def test_the_api_answers_400_naming_the_field_and_rule(api_as, editor, data, field, message):
    body = {"start_url": "https://example.org/", **({} if "album" in data else
                                                    {"album_name": "Found"}), **data}
    response = api_as(editor).post("/api/scrape-runs/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert not ScrapeRun.objects.exists() and not Album.objects.exists()


@pytest.mark.django_db
def test_the_api_answers_404_naming_an_album_that_is_not_there(api_as, editor):
    response = api_as(editor).post("/api/scrape-runs/", {
        "start_url": "https://example.org/", "album": 999999}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["album"] == ["No album of yours has this id."]
    assert not ScrapeRun.objects.exists()


@pytest.mark.django_db
def test_viewers_cannot_scrape_and_editors_may_fill_any_album(api_as, editor, viewer):
    album = Album.objects.create(name="Theirs", owner=viewer)
    response = api_as(editor).post("/api/scrape-runs/", {
        "start_url": "https://example.org/", "album": album.pk}, format="json")
    # Editors curate every album, so this one is theirs to fill.
    assert response.status_code == 201
    response = api_as(viewer).post("/api/scrape-runs/", {
        "start_url": "https://example.org/", "album": album.pk}, format="json")
    assert response.status_code == 403  # viewers cannot scrape at all


# --- The task ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_scrapes_the_site_file_by_file_and_row_by_row(
    served, scrape_settings, editor, media_files, django_capture_on_commit_callbacks
):
    cleaned = scrape.validate_scrape({"start_url": served.url + "/", "depth": 1,
                                      "min_width": 8, "min_height": 8,
                                      "album_name": "Found"}, editor)
    with django_capture_on_commit_callbacks(execute=False):
        run = scrape.start_scrape(editor, cleaned)

    assert scrape.run_scrape(run.pk) == f"scrape run {run.pk} succeeded"

    run.refresh_from_db()
    assert_scraped(run, served.url, media_files)
    assert run.album.owner == editor and run.album.name == "Found"
    paths = [r.path for r in served.requests]
    assert "/page3.html" not in paths  # depth 1: page2's links are not followed
    assert "/private/secret.html" not in paths and "/private/p.png" not in paths
    assert paths.count("/img/red.png") == 1 and paths.count("/robots.txt") == 1
    assert not any("elsewhere" in p for p in paths)


@pytest.mark.django_db
def test_it_stops_at_max_images_and_keeps_a_caption_a_person_wrote(
    served, scrape_settings, editor, django_capture_on_commit_callbacks
):
    from albums.ingest import store_image

    mine, _ = store_image(RED, filename="red.png", source=Image.Source.UPLOAD,
                          created_by=editor)
    mine.set_caption("my own words", by=editor)
    with django_capture_on_commit_callbacks(execute=False):
        run = scrape.start_scrape(editor, scrape.validate_scrape(
            {"start_url": served.url + "/", "max_images": 2, "album_name": "Two"}, editor))
    scrape.run_scrape(run.pk)

    run.refresh_from_db()
    assert (run.status, run.images_kept, run.progress) == ("succeeded", 2, 1.0)
    assert run.album.images.count() == 2
    mine.refresh_from_db()
    assert mine.caption == "my own words"  # the same bytes: the editor's image, their caption
    assert list(mine.labels.values_list("source", flat=True)) == ["manual"]
    assert "/page2.html" not in [r.path for r in served.requests]


@pytest.mark.django_db
def test_a_cancelled_run_stops_and_keeps_what_it_stored(
    served, scrape_settings, editor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        run = scrape.start_scrape(editor, scrape.validate_scrape(
            {"start_url": served.url + "/", "album_name": "C"}, editor))
    original = ScrapeRun.record

    def cancel_after_first_image(self, **kwargs):
        answer = original(self, **kwargs)
        if self.images_kept == 1:
            ScrapeRun.objects.get(pk=self.pk).cancel()
        return answer

    ScrapeRun.record = cancel_after_first_image
    try:
        result = scrape.run_scrape(run.pk)
    finally:
        ScrapeRun.record = original
    run.refresh_from_db()
    assert result == f"scrape run {run.pk} is no longer this worker's"
    assert (run.status, run.images_kept, Image.objects.count()) == ("cancelled", 1, 1)


def test_the_deploy_check_warns_while_loopback_is_allowed(settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True
    warnings = [m for m in checks.run_checks(include_deployment_checks=True)
                if m.id == "albums.W001"]
    assert len(warnings) == 1 and "IMAGINEER_SCRAPE_ALLOW_LOOPBACK" in warnings[0].msg
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = False
    assert not [m for m in checks.run_checks(include_deployment_checks=True)
                if m.id == "albums.W001"]
    assert not [m for m in checks.run_checks() if m.id == "albums.W001"]  # deploy only


# --- In a real worker: the API, the page, kill and resume ----------------------------------

@pytest.mark.django_db(transaction=True)
def test_an_editor_scrapes_through_the_api_in_a_real_worker(
    served, scrape_settings, start_worker, api_as, editor, other_viewer, media_files
):
    start_worker(**WORKER_ENV)
    client = api_as(editor)
    response = client.post("/api/scrape-runs/", {
        "start_url": served.url + "/", "depth": 1, "min_width": 8, "min_height": 8,
        "album_name": "Found"}, format="json")
    assert response.status_code == 201, response.content
    status_url = response.json()["status_url"]
    assert response["Location"] == status_url

    def finished():
        run = client.get(status_url).json()
        return run if run["status"] not in ("queued", "running") else None

    answer = wait_for(finished, timeout=120, message="the scrape run to end")
    assert (answer["status"], answer["images_kept"], answer["refused"]) == (
        "succeeded", 3, EXPECTED_REFUSED)
    assert_scraped(ScrapeRun.objects.get(), served.url, media_files)
    assert api_as(other_viewer).get(status_url).status_code == 404
    assert api_as(other_viewer).get("/api/scrape-runs/").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_resumes_from_its_stored_frontier(
    start_worker, scrape_settings, editor, media_files
):
    handler = site(image_delay=0.4)
    with LocalServer(handler) as server:
        handler.port = server.httpd.server_port
        worker = start_worker(**WORKER_ENV)
        run = scrape.start_scrape(editor, scrape.validate_scrape({
            "start_url": server.url + "/", "depth": 1, "min_width": 8, "min_height": 8,
            "album_name": "Found"}, editor))
        wait_for(lambda: ScrapeRun.objects.get(pk=run.pk).images_kept >= 1, timeout=60,
                 message="the first image kept")
        worker.kill()
        run.refresh_from_db()
        assert run.status == "running" and 1 <= run.images_kept < 3
        kept_before = run.images_kept
        requests_before = len(server.requests)

        start_worker(**WORKER_ENV)  # reclaims the dead worker's run and goes on
        wait_for(lambda: ScrapeRun.objects.get(pk=run.pk).is_finished, timeout=120,
                 message="the resumed run to end")

    run.refresh_from_db()
    assert run.attempts == 2
    assert_scraped(run, server.url, media_files)
    after = [r.path for r in server.requests[requests_before:]]
    assert kept_before >= 1 and "/img/red.png" not in after  # kept before: not fetched again


# --- The page, and captioning after a scrape -----------------------------------------------

@pytest.mark.django_db
def test_the_page_shows_each_bad_field_and_starts_nothing(client, editor):
    client.force_login(editor)
    response = client.post("/scrape/", {"start_url": "file:///etc/passwd", "depth": "9",
                                         "max_images": "5", "album_name": "Found"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "An http or https URL with a host" in text
    assert "A whole number from 0 to 3; got 9." in text
    assert not ScrapeRun.objects.exists() and not Album.objects.exists()


@pytest.mark.django_db
def test_the_page_starts_a_run_and_shows_its_progress(client, editor,
                                                      django_capture_on_commit_callbacks):
    client.force_login(editor)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/scrape/", {"start_url": "https://example.org/",
                                             "depth": "0", "album_name": "Found"})
    run = ScrapeRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scrape/{run.pk}/"
    assert (run.depth, run.same_site, run.album.name) == (0, False, "Found")  # unticked
    page = client.get(response["Location"]).content.decode()
    assert "Queued: 0 pages visited, 0 images found, 0 kept." in page


@pytest.mark.django_db
def test_a_scrape_that_asks_for_captions_starts_a_caption_run_with_the_chosen_backend(
    scrape_settings, editor, django_capture_on_commit_callbacks
):
    import json

    from albums import tasks

    pages = {"/": (200, HTML, b'<img src="/a.png"><img src="/b.png" alt="the page\'s words">'),
             "/a.png": (200, PNG, RED), "/b.png": (200, PNG, BLUE)}
    answer = json.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                         "content": [{"type": "text", "text": "a red square, flat colour"}],
                         "stop_reason": "end_turn"}).encode()
    with LocalServer(lambda r: pages.get(r.path, (404, HTML, b""))) as site_server, \
            LocalServer(lambda r: (200, {"Content-Type": "application/json"}, answer)) as api:
        scrape_settings.IMAGINEER_CAPTION_BACKEND = "anthropic"
        scrape_settings.ANTHROPIC_API_KEY = "sk-test"
        scrape_settings.IMAGINEER_ANTHROPIC_BASE_URL = api.url
        with django_capture_on_commit_callbacks(execute=False):
            run = scrape.start_scrape(editor, scrape.validate_scrape(
                {"start_url": site_server.url + "/", "album_name": "Found", "caption": True},
                editor))
            scrape.run_scrape(run.pk)
        run.refresh_from_db()
        assert run.caption_run is not None and run.caption_run.album_id == run.album_id
        tasks.caption_album(run.album_id, run.caption_run_id)

    run.caption_run.refresh_from_db()
    assert (run.caption_run.status, run.caption_run.total, run.caption_run.done) == (
        "succeeded", 1, 1)
    assert stored_captions(run.album) == [("a red square, flat colour", "auto"),
                                          ("the page's words", "scraped")]
    assert len(api.requests) == 1  # the image with the page's words was not sent


def stored_captions(album):
    return [(entry.image.caption, entry.image.labels.get().source)
            for entry in AlbumImage.objects.filter(album=album).select_related("image")]
