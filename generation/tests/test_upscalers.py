"""Upscaler models in the registry (kind "upscaler": ESRGAN family, engine/upscalers.py)
and in jobs: registered by upload (API) and by path (command), wrong files refused with a
400 naming the field and nothing kept, chosen by a job (API, generate page) under the
model access rule, and run by a real worker, whose pixels are the model's own."""

import io

import numpy as np
import pytest
import torch
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from safetensors.torch import save_file

from albums.ingest import store_image
from albums.models import Image
from generation.engine.upscalers import RRDB, UpscalerInfo, load_upscaler, random_state_dict
from generation.models import Job, ModelVersion, Status
from imagineer.testing import manage

from .conftest import QUICK
from .engine_helpers import png_of, red_circle

X2 = UpscalerInfo(RRDB, scale=2, in_channels=3, out_channels=3, features=8, blocks=1, grow=4)


@pytest.fixture(scope="module")
def upscaler_files(tmp_path_factory):
    """A tiny random 2x RRDBNet as a .pth in ESRGAN's old key layout and as a .safetensors
    in its new one (the same weights)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("upscalers")
    old, new = folder / "2x_tiny_old.pth", folder / "2x_tiny_new.safetensors"
    torch.save(random_state_dict(X2, "old"), old)
    save_file(random_state_dict(X2, "new"), str(new))
    return {"pth": old, "safetensors": new}


def upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes(),
                              content_type="application/octet-stream")


@pytest.fixture
def upscaler(db, upscaler_files):
    return ModelVersion.from_source(name="tiny 2x", kind="upscaler",
                                    source=str(upscaler_files["pth"])).register()


def stored(picture, owner, name="small.png"):
    image, _ = store_image(png_of(picture), filename=name, source=Image.Source.UPLOAD,
                           created_by=owner)
    return image


def submit(api_as, user, **body):
    return api_as(user).post("/api/jobs/", {"prompt": "a red circle", **QUICK, **body},
                             format="json")


# Registration


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_an_uploaded_upscaler_is_registered_with_what_its_keys_say(
        api_as, editor, upscaler_files, media_root, kind):
    response = api_as(editor).post("/api/models/", {
        "name": "tiny", "kind": "upscaler", "file": upload(upscaler_files[kind])},
        format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "upscaler" and not body["is_default"]
    assert "2x RRDBNet (ESRGAN) upscaler" in body["description"]
    model = ModelVersion.objects.get(pk=body["id"])
    assert model.file.name == f"models/{model.sha256}.{kind}"
    assert load_upscaler(model.engine_source()).info == X2
    listed = api_as(editor).get("/api/models/?kind=upscaler").json()["results"]
    assert [m["id"] for m in listed] == [model.pk]


@pytest.mark.django_db
def test_a_file_that_is_no_upscaler_is_refused_naming_the_field_and_nothing_is_kept(
        api_as, editor, demo_loras, media_root, tmp_path):
    text = tmp_path / "readme.pth"
    text.write_bytes(b"no weights here")
    for path in (text, demo_loras[0]):
        response = api_as(editor).post("/api/models/", {
            "name": "bad", "kind": "upscaler", "file": upload(path)}, format="multipart")
        assert response.status_code == 400, response.content
        message = response.json()["file"][0]
        assert path.name in message and "ESRGAN" in message
        response = api_as(editor).post("/api/models/", {
            "name": "bad", "kind": "upscaler", "source": str(path)}, format="json")
        assert response.status_code == 400, response.content
        assert path.name in response.json()["source"][0]
    assert not ModelVersion.objects.exists()
    assert not (media_root / "models").exists() or not any((media_root / "models").iterdir())


def test_the_command_registers_an_upscaler_by_path_and_refuses_another_file(
        transactional_db, upscaler_files, demo_loras):
    result = manage("register_model", "tiny 2x", "--kind", "upscaler", "--source",
                    str(upscaler_files["safetensors"]))
    assert result.returncode == 0, result.stderr
    model = ModelVersion.objects.upscalers().get()
    assert (model.name, model.is_default) == ("tiny 2x", False)
    bad = manage("register_model", "nope", "--kind", "upscaler", "--source",
                 str(demo_loras[0]))
    assert bad.returncode != 0 and "is a LoRA, not an upscaler" in bad.stderr


@pytest.mark.django_db
def test_an_upscaler_is_never_the_default(upscaler):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Only a base model"):
        upscaler.make_default()


# Jobs


@pytest.mark.django_db
def test_a_job_takes_an_upscaler_where_a_picture_is_made_larger(
        api_as, viewer, demo_base, upscaler, media_root):
    small = stored(red_circle(32), viewer)
    response = submit(api_as, viewer, init_image=small.pk, upscaler=upscaler.pk)
    assert response.status_code == 201, response.content
    assert response.json()["upscaler"] == upscaler.pk
    assert Job.objects.get().upscaler == upscaler
    hires = submit(api_as, viewer, hires={"scale": 2}, upscaler=upscaler.pk)
    assert hires.status_code == 201, hires.content


@pytest.mark.django_db
def test_an_upscaler_is_refused_where_nothing_is_made_larger_or_it_is_not_one(
        api_as, viewer, demo_base, upscaler, media_root):
    same = stored(red_circle(64), viewer)
    for body in ({}, {"init_image": same.pk}):
        response = submit(api_as, viewer, upscaler=upscaler.pk, **body)
        assert response.status_code == 400, response.content
        assert "makes a picture larger" in response.json()["upscaler"][0]
    # A base model's id names no upscaler: answered as a missing one (404, the field named).
    response = submit(api_as, viewer, hires={"scale": 2}, upscaler=demo_base.pk)
    assert response.status_code == 404
    assert response.json()["upscaler"] == [
        f"upscaler must be an active upscaler your role may use (its usable_by); "
        f"{demo_base.pk} is not."]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_upscaler_the_role_may_not_use_is_as_if_it_did_not_exist(
        api_as, viewer, editor, demo_base, upscaler):
    upscaler.usable_by = ModelVersion.UsableBy.EDITORS
    upscaler.save()
    hidden = submit(api_as, viewer, hires={"scale": 2}, upscaler=upscaler.pk).json()
    missing = submit(api_as, viewer, hires={"scale": 2}, upscaler=upscaler.pk + 99).json()
    assert hidden["upscaler"][0].replace(str(upscaler.pk), "N") == \
        missing["upscaler"][0].replace(str(upscaler.pk + 99), "N")
    assert api_as(viewer).get("/api/models/?kind=upscaler").json()["results"] == []
    assert submit(api_as, editor, hires={"scale": 2},
                  upscaler=upscaler.pk).status_code == 201
    assert Job.objects.get().owner == editor


@pytest.mark.django_db
def test_the_generate_page_offers_the_usable_upscalers_and_submits_the_chosen_one(
        client, viewer, demo_base, upscaler, media_root):
    small = stored(red_circle(32), viewer)
    client.force_login(viewer)
    browser = client
    page = browser.get(f"/generate/?init_image={small.pk}&mode=upscale").content.decode()
    assert f'<option value="{upscaler.pk}">tiny 2x</option>' in page
    assert "Lanczos (plain resampler)" in page
    response = browser.post("/generate/?mode=upscale", {
        "prompt": "a red circle", "size": "64x64", "scheduler": "pndm", "steps": 4,
        "guidance_scale": 5, "clip_skip": 1, "init_image": small.pk, "strength": 0.3,
        "mask_blur": 4, "upscaler": upscaler.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Job.objects.get().upscaler == upscaler


# Through the real worker


def open_stored(image):
    with default_storage.open(image.file.name, "rb") as f:
        picture = PILImage.open(io.BytesIO(f.read()))
        picture.load()
    return picture


def finished(job_id):
    from imagineer.testing import wait_for

    job = wait_for(lambda: (j := Job.objects.get(pk=job_id)).status in (
        Status.SUCCEEDED, Status.FAILED) and j, timeout=180, message="the job to end")
    assert job.status == Status.SUCCEEDED, job.error
    return job


@pytest.mark.django_db(transaction=True)
def test_a_worker_upscales_with_the_model_and_the_png_names_it(
        worker, api_as, viewer, demo_base, upscaler_files, media_root):
    from sd_parsers import ParserManager

    response = api_as(viewer).post("/api/models/", {
        "name": "tiny 2x", "kind": "upscaler", "file": upload(upscaler_files["safetensors"])},
        format="multipart")
    assert response.status_code == 403  # viewers register nothing
    model = ModelVersion.from_source(name="tiny 2x", kind="upscaler",
                                     source=str(upscaler_files["safetensors"])).register()
    source = red_circle(32)
    small = stored(source, viewer)
    # Strength 0: the upscaled picture itself, nothing drawn over it.
    with_model = submit(api_as, viewer, init_image=small.pk, width=64, height=64,
                        strength=0.0, upscaler=model.pk).json()["id"]
    plain = submit(api_as, viewer, init_image=small.pk, width=64, height=64,
                   strength=0.0).json()["id"]

    job = finished(with_model)
    image = job.images.get()
    picture = open_stored(image).convert("RGB")
    assert picture.size == (64, 64)
    # The pixels of the old-layout .pth run directly: the same weights in another file.
    direct = load_upscaler(upscaler_files["pth"]).run(source)
    assert np.array_equal(np.asarray(picture), np.asarray(direct))
    assert (image.params["upscaler"], image.params["upscaler_hash"]) == (
        "tiny 2x", model.short_hash)
    assert ParserManager().parse(open_stored(image)).metadata["Upscaler"] == "tiny 2x"

    lanczos = open_stored(finished(plain).images.get()).convert("RGB")
    expected = source.convert("RGB").resize((64, 64), PILImage.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(lanczos), np.asarray(expected))
    assert not np.array_equal(np.asarray(lanczos), np.asarray(picture))

    hires = submit(api_as, viewer, width=64, height=64, hires={"scale": 2, "strength": 0.3},
                   upscaler=model.pk).json()["id"]
    drawn = open_stored(finished(hires).images.get())
    assert drawn.size == (128, 128)
    assert ParserManager().parse(drawn).metadata["Hires upscaler"] == "tiny 2x"
