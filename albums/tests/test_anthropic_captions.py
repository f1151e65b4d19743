"""Captions by a vision LLM: the "anthropic" backend against a local server that answers as
Anthropic's Messages API does (the package's base URL pointed at it), in the task and in a
real worker."""

import base64
import io
import json

import pytest
from PIL import Image as PILImage

from albums import tasks
from albums.captioning import AnthropicCaptioner, AnthropicOptions, CaptionFailed
from albums.models import Album, CaptionRun, Label
from imagineer.testing import LocalServer, wait_for

JSON = {"Content-Type": "application/json"}
FAST_RETRY = {**JSON, "retry-after-ms": "10"}  # the package honours it: no 0.5 s sleeps


def message(text, stop_reason="end_turn"):
    """A Messages API answer holding `text`."""
    return (200, JSON, json.dumps({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
        "stop_sequence": None, "usage": {"input_tokens": 300, "output_tokens": 20},
    }).encode())


def api_error(status, kind, text):
    return (status, FAST_RETRY, json.dumps(
        {"type": "error", "error": {"type": kind, "message": text}}).encode())


def scripted(*answers):
    """A handler answering requests with `answers` in turn, the last one ever after."""
    answers = list(answers)

    def handle(request):
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return handle


def captioner(server, **options):
    return AnthropicCaptioner(AnthropicOptions(
        api_key="sk-test", base_url=server.url, **{"max_retries": 2, **options}))


def decoded_image(request):
    source = request.json()["messages"][0]["content"][0]["source"]
    return PILImage.open(io.BytesIO(base64.b64decode(source["data"])))


def test_it_sends_the_image_shrunk_as_base64_jpeg_with_the_model_and_prompt():
    picture = PILImage.new("RGBA", (2000, 1000), (200, 30, 30, 255))
    with LocalServer(scripted(message("  a red square,\n flat colour,  digital art "))) as server:
        text = captioner(server, model="claude-test", prompt="Say what it is.",
                         max_side=512).caption(picture)

    assert text == "a red square, flat colour, digital art"  # one line, spaces collapsed
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    # The key from the settings (x-api-key, or a bearer token as newer packages send it).
    assert "sk-test" in (request.headers.get("x-api-key"),
                         request.headers.get("authorization", "").removeprefix("Bearer "))
    assert request.headers["anthropic-version"]
    body = request.json()
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 200
    (turn,) = body["messages"]
    assert turn["role"] == "user"
    image, prompt = turn["content"]
    assert prompt == {"type": "text", "text": "Say what it is."}
    assert (image["type"], image["source"]["type"], image["source"]["media_type"]) == (
        "image", "base64", "image/jpeg")
    sent = decoded_image(request)
    assert (sent.format, sent.size, sent.mode) == ("JPEG", (512, 256), "RGB")
    red, green, blue = sent.getpixel((256, 128))
    assert red > 180 and green < 60 and blue < 60


def test_it_never_enlarges_a_small_image():
    with LocalServer(scripted(message("a dot"))) as server:
        captioner(server, max_side=768).caption(PILImage.new("L", (40, 30), 128))
    assert decoded_image(server.requests[0]).size == (40, 30)


def test_it_retries_after_a_429_and_captions():
    with LocalServer(scripted(api_error(429, "rate_limit_error", "slow down"),
                              message("a harbour at dusk"))) as server:
        text = captioner(server).caption(PILImage.new("RGB", (64, 64)))

    assert text == "a harbour at dusk"
    assert len(server.requests) == 2
    assert server.requests[0].json() == server.requests[1].json()


def test_it_fails_the_image_once_500s_outlast_the_retries():
    with LocalServer(scripted(api_error(500, "api_error", "the server broke"))) as server:
        with pytest.raises(CaptionFailed) as failed:
            captioner(server, max_retries=2).caption(PILImage.new("RGB", (64, 64)))

    assert len(server.requests) == 3  # the first try and two retries
    assert str(failed.value) == "the Messages API answered 500: the server broke"


def test_it_does_not_retry_a_request_the_api_calls_invalid():
    with LocalServer(scripted(api_error(400, "invalid_request_error", "bad image"))) as server:
        with pytest.raises(CaptionFailed, match="answered 400: bad image"):
            captioner(server).caption(PILImage.new("RGB", (64, 64)))
    assert len(server.requests) == 1


@pytest.mark.parametrize("answer", [
    (200, JSON, b'{"id": "msg_01", "type": "message", "content": []}'),
    (200, JSON, b'{"id": "msg_01", "type": "message", "content": [{"type": "tool_use"}]}'),
    (200, JSON, b'{"unexpected": true}'),
    (200, JSON, b"<html>a proxy's error page</html>"),
    message("   "),
], ids=["no-content", "no-text-block", "not-a-message", "not-json", "blank-text"])
def test_it_fails_the_image_on_a_malformed_answer(answer):
    with LocalServer(scripted(answer)) as server:
        with pytest.raises(CaptionFailed, match="Messages API"):
            captioner(server).caption(PILImage.new("RGB", (64, 64)))


@pytest.fixture
def anthropic_settings(settings):
    def use(server):
        settings.IMAGINEER_CAPTION_BACKEND = "anthropic"
        settings.ANTHROPIC_API_KEY = "sk-test"
        settings.IMAGINEER_ANTHROPIC_BASE_URL = server.url
        settings.IMAGINEER_CAPTION_MAX_RETRIES = 1
        settings.IMAGINEER_CAPTION_MAX_SIDE = 1024

    return use


@pytest.mark.django_db
def test_a_run_goes_on_past_an_image_the_api_refuses_and_keeps_peoples_captions(
    anthropic_settings, viewer, make_image
):
    album = Album.objects.create(name="Harbour", owner=viewer)
    first, refused, written = (make_image(created_by=viewer, album=album) for _ in range(3))
    written.set_caption("written by a person", by=viewer)
    run = CaptionRun.objects.create(album=album, created_by=viewer)
    with LocalServer(scripted(message("a boat, photograph"),
                              api_error(400, "invalid_request_error", "image too odd"))) as server:
        anthropic_settings(server)
        tasks.caption_album(album.pk, run.pk)

    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.failed, run.empty) == (
        "succeeded", 2, 2, 1, 0)
    assert run.error == f"image {refused.pk}: the Messages API answered 400: image too odd"
    assert run.summary == (
        f"Done: captioned 1 of 2 images; 1 could not be captioned: {run.error}.")
    labels = Label.objects.order_by("image_id").values_list("image_id", "text", "source")
    assert list(labels) == [(first.pk, "a boat, photograph", "auto"),
                            (written.pk, "written by a person", "manual")]
    assert len(server.requests) == 2  # the person's image was never sent
    # The originals were sent (the backend takes more than the 384 px thumbnail).
    assert decoded_image(server.requests[0]).size == (first.width, first.height)


@pytest.mark.django_db
def test_it_does_not_write_over_a_caption_a_person_wrote_while_the_api_was_answering(
    viewer, make_image
):
    image = make_image(created_by=viewer)
    image.set_caption("mine", by=viewer)
    assert image.set_auto_caption("the model's", by=viewer) is None
    assert image.caption == "mine"
    assert Label.objects.filter(image=image).count() == 1


def test_captioning_is_off_while_the_anthropic_backend_has_no_key(settings):
    settings.IMAGINEER_CAPTION_BACKEND = "anthropic"
    settings.ANTHROPIC_API_KEY = ""
    assert "ANTHROPIC_API_KEY" in tasks.captioning_off()
    settings.ANTHROPIC_API_KEY = "sk-test"
    settings.IMAGINEER_CAPTION_MODEL = ""
    assert tasks.captioning_off() is None


@pytest.mark.django_db(transaction=True)
def test_it_captions_an_album_through_the_messages_api_in_a_real_worker(
    start_worker, api_as, viewer, make_image, settings
):
    album = Album.objects.create(name="Harbour", owner=viewer)
    images = [make_image(created_by=viewer, album=album) for _ in range(2)]
    settings.IMAGINEER_CAPTION_BACKEND = "anthropic"  # the web side's
    settings.ANTHROPIC_API_KEY = "sk-test"
    with LocalServer(scripted(api_error(529, "overloaded_error", "busy"),
                              message("a harbour, oil painting"))) as server:
        start_worker(IMAGINEER_CAPTION_BACKEND="anthropic", ANTHROPIC_API_KEY="sk-test",
                     IMAGINEER_ANTHROPIC_BASE_URL=server.url, IMAGINEER_CAPTION_MODEL="")
        client = api_as(viewer)
        status_url = client.post(f"/api/albums/{album.pk}/caption/").json()["status_url"]

        def finished():
            run = client.get(status_url).json()
            return run if run["status"] in ("succeeded", "failed") else None

        run = wait_for(finished, timeout=120, message="the worker to finish the caption run")

    assert (run["status"], run["done"], run["total"], run["error"]) == ("succeeded", 2, 2, "")
    assert sorted(Label.objects.values_list("image_id", "text", "source")) == [
        (image.pk, "a harbour, oil painting", "auto") for image in images]
    assert len(server.requests) == 3  # the 529 was retried
