"""SDXL end to end, offline, on a tiny SDXL built here (engine/tiny_sdxl.py: the real SDXL
component classes, random weights): written in the original single-file layout, read as
SDXL from its keys, registered by folder, path and upload with the network blocked,
generated from with StableDiffusionXLPipeline, its LoRAs in diffusers' and kohya's
layouts, a LoRA of the wrong family refused."""

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from generation.engine.checkpoints import inspect_checkpoint
from generation.engine.params import GenerationParams
from generation.engine.pipelines import PipelineCache
from generation.models import Job, ModelVersion, Status
from imagineer.testing import wait_for

QUICK = GenerationParams("a red castle", width=64, height=64, steps=3, seed=7)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_it_writes_sdxl_in_the_original_layout_and_reads_it_as_sdxl(tiny_sdxl_file):
    from safetensors import safe_open

    with safe_open(str(tiny_sdxl_file), framework="pt") as handle:
        keys = set(handle.keys())
    assert "model.diffusion_model.label_emb.0.0.weight" in keys  # the size conditioning
    assert "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight" in keys
    assert "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight" in keys
    assert "conditioner.embedders.1.model.text_projection" in keys
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in keys
    assert not any(key.startswith(("cond_stage_model.", "unet.", "text_encoder")) for key in keys)
    info = inspect_checkpoint(tiny_sdxl_file)
    assert (info.family, info.inpainting, info.own_config) == ("sdxl", False, True)


def test_it_generates_with_the_sdxl_pipeline_from_folder_and_file_alike(
        tiny_sdxl_dir, tiny_sdxl_file, no_network):
    cache = PipelineCache()
    from_folder = cache.generate(str(tiny_sdxl_dir), QUICK)
    assert type(cache._pipeline).__name__ == "StableDiffusionXLPipeline"
    from_file = cache.generate(str(tiny_sdxl_file), QUICK)
    assert type(cache._pipeline).__name__ == "StableDiffusionXLPipeline"
    assert cache.load_count == 2
    assert from_file[0].size == (64, 64)
    assert from_file[0].tobytes() == from_folder[0].tobytes()
    assert "Sampler: Euler," in from_file.parameters_text(0, model_name="tiny-xl")
    # Image to image runs on the same SDXL components.
    from generation.engine.pipelines import Source

    again = cache.generate(str(tiny_sdxl_file), GenerationParams(
        "a red castle", width=64, height=64, steps=4, seed=7, strength=0.5),
        source=Source(from_file[0]))
    assert type(cache.derived(cache._pipeline, "img2img")).__name__ == \
        "StableDiffusionXLImg2ImgPipeline"
    assert again[0].size == (64, 64) and cache.load_count == 2


@pytest.mark.django_db
def test_it_registers_sdxl_by_folder_path_and_upload(api_as, admin_user, tiny_sdxl_dir,
                                                     tiny_sdxl_file, demo_model_dir,
                                                     no_network):
    client = api_as(admin_user)
    folder = client.post("/api/models/", {"name": "xl-folder", "kind": "base", "family": "sd15",
                                          "source": str(tiny_sdxl_dir)}, format="json")
    assert folder.status_code == 201, folder.content
    assert folder.json()["family"] == "sdxl"  # model_index.json names the SDXL pipeline

    by_path = client.post("/api/models/", {"name": "xl-file", "kind": "base",
                                           "source": str(tiny_sdxl_file)}, format="json")
    assert by_path.status_code == 201, by_path.content
    assert by_path.json()["family"] == "sdxl"

    by_upload = client.post("/api/models/", {
        "name": "xl-uploaded", "kind": "base",
        "file": SimpleUploadedFile("tiny-xl.safetensors", tiny_sdxl_file.read_bytes())},
        format="multipart")
    assert by_upload.status_code == 201, by_upload.content
    assert by_upload.json()["family"] == "sdxl"

    not_xl = client.post("/api/models/", {"name": "demo", "kind": "base", "family": "sdxl",
                                          "source": str(demo_model_dir)}, format="json")
    assert not_xl.status_code == 400
    assert "not an SDXL model" in not_xl.json()["family"][0]


@pytest.mark.django_db
def test_sdxl_loras_register_in_both_layouts_and_the_wrong_family_is_refused(
        api_as, admin_user, tiny_sdxl_file, tiny_sdxl_loras, demo_base, demo_loras):
    client = api_as(admin_user)
    ModelVersion.from_source(name="tiny-xl", kind="base", source=str(tiny_sdxl_file)).register()
    for layout, path in tiny_sdxl_loras.items():
        response = client.post("/api/models/", {"name": f"xl-{layout}", "kind": "lora",
                                                "family": "sdxl", "source": str(path)},
                               format="json")
        assert response.status_code == 201, response.content
        assert response.json()["family"] == "sdxl"

    # An SD 1.x LoRA (the demo's, width 64) said to be SDXL: the tiny SDXL's width is 96.
    wrong = client.post("/api/models/", {"name": "wrong", "kind": "lora", "family": "sdxl",
                                         "source": str(demo_loras[0])}, format="json")
    assert wrong.status_code == 409  # fits no registered SDXL base (core.errors.CONFLICT)
    assert "expects text features of width 64" in wrong.json()["source"][0]
    assert "cross_attention_dim 96" in wrong.json()["source"][0]
    # And an SDXL LoRA said to be SD 1.x (the demo's width is 64).
    upload = client.post("/api/models/", {
        "name": "wrong", "kind": "lora", "family": "sd15",
        "file": SimpleUploadedFile("xl.safetensors", tiny_sdxl_loras["kohya"].read_bytes())},
        format="multipart")
    assert upload.status_code == 409
    assert "width 96" in upload.json()["file"][0]

    # At submit: an SDXL LoRA on an SD 1.x base.
    xl_lora = ModelVersion.objects.get(name="xl-kohya")
    job = client.post("/api/jobs/", {"prompt": "x", "width": 64, "height": 64,
                                     "model": demo_base.pk,
                                     "loras": [{"id": xl_lora.pk, "weight": 1.0}]},
                      format="json")
    assert job.status_code == 400
    assert "is a sdxl LoRA; the base model demo is sd15" in json.dumps(job.json()["loras"])


def test_the_kohya_layout_draws_what_the_diffusers_layout_draws(tiny_sdxl_dir, tiny_sdxl_file,
                                                               tmp_path, no_network):
    from generation.engine.lora import make_random_lora

    # The same random LoRA (same seed) in both layouts.
    paths = {layout: make_random_lora(tiny_sdxl_dir, tmp_path / f"{layout}.safetensors",
                                      seed=9, kohya=layout == "kohya")
             for layout in ("diffusers", "kohya")}
    cache = PipelineCache()
    plain = cache.generate(str(tiny_sdxl_file), QUICK)[0]
    drawn = {layout: cache.generate(str(tiny_sdxl_file), QUICK, loras=[(layout, path, 1.0)])[0]
             for layout, path in paths.items()}
    assert cache.load_count == 1
    assert np.abs(pixels(drawn["diffusers"]) - pixels(plain)).mean() > 2
    assert np.abs(pixels(drawn["kohya"]) - pixels(drawn["diffusers"])).max() <= 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_an_sdxl_job_with_a_kohya_lora_to_a_png(start_worker, api_as, viewer,
                                                             tiny_sdxl_file, tiny_sdxl_loras):
    from sd_parsers import ParserManager

    base = ModelVersion.from_source(name="tiny-xl", kind="base",
                                    source=str(tiny_sdxl_file)).register()
    base.make_default()
    lora = ModelVersion.from_source(name="xl-style", kind="lora", family="sdxl",
                                    source=str(tiny_sdxl_loras["kohya"])).register()
    start_worker(HF_HUB_OFFLINE="1")
    response = api_as(viewer).post("/api/jobs/", {
        "prompt": "a red castle", "width": 64, "height": 64, "steps": 3, "seed": 11,
        "loras": [{"id": lora.pk, "weight": 0.8}]}, format="json")
    assert response.status_code == 201, response.content
    job = wait_for(lambda: (job := Job.objects.get(pk=response.json()["id"])).status in
                   (Status.SUCCEEDED, Status.FAILED) and job, timeout=180,
                   message="the SDXL job to finish")
    assert job.status == Status.SUCCEEDED, job.error
    image = job.images.get()
    with default_storage.open(image.file.name, "rb") as handle:
        picture = PILImage.open(io.BytesIO(handle.read()))
        picture.load()
    assert picture.size == (64, 64)
    info = ParserManager().parse(picture)
    sampler = info.samplers[0]
    assert sampler.model.name == "tiny-xl" and sampler.model.hash == base.sha256[:10]
    assert f'Lora hashes: "xl-style: {lora.sha256[:10]}"' in picture.text["parameters"]


def test_a_half_precision_vae_that_overflows_decodes_again_in_fp32(tiny_sdxl_dir, tmp_path):
    """SDXL's VAE overflows in fp16 at some sizes: here a tiny SDXL whose VAE overflows in
    fp16 (its post_quant_conv scaled up) and whose config does not say force_upcast, run
    in fp16 on the CPU (device.upcast_on_overflow)."""
    import shutil

    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline

    from generation.engine.device import Device

    folder = tmp_path / "overflowing-xl"
    shutil.copytree(tiny_sdxl_dir, folder)
    vae = AutoencoderKL.from_pretrained(tiny_sdxl_dir, subfolder="vae")
    with torch.no_grad():
        vae.post_quant_conv.weight.mul_(3000.0)
    vae.register_to_config(force_upcast=False)
    vae.save_pretrained(folder / "vae")
    half = GenerationParams("a red castle", width=64, height=64, steps=2, seed=7)

    # Without the check, diffusers hands back NaN (a black picture).
    plain = StableDiffusionXLPipeline.from_pretrained(folder, dtype=torch.float16)
    plain.set_progress_bar_config(disable=True)
    drawn = plain(prompt="a red castle", width=64, height=64, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(7), output_type="np").images
    assert np.isnan(drawn).any()

    cache = PipelineCache(device=Device("cpu", torch.float16))
    image = cache.generate(str(folder), half)[0]
    assert cache._pipeline.vae.config.force_upcast  # diffusers upcasts from now on
    assert cache._pipeline.vae.dtype == torch.float16
    assert pixels(image).std() > 1  # a picture, not black
    assert pixels(cache.generate(str(folder), half)[0]).std() > 1


def test_clip_skip_conditions_both_sdxl_text_encoders_on_an_earlier_layer(tiny_sdxl_file,
                                                                          no_network):
    """A1111's clip skip on SDXL: 1 is SDXL's own (the penultimate layer of both encoders),
    2 the one before it; the PNG text says it as A1111 does."""
    from dataclasses import replace

    cache = PipelineCache()
    own = cache.generate(str(tiny_sdxl_file), QUICK)
    skipped = cache.generate(str(tiny_sdxl_file), replace(QUICK, clip_skip=2))
    assert cache.load_count == 1
    assert np.abs(pixels(skipped[0]) - pixels(own[0])).mean() > 1
    assert "Clip skip" not in own.parameters_text(0)
    assert "Clip skip: 2" in skipped.parameters_text(0)


def test_a_hub_id_sdxl_base_loads_with_the_sdxl_pipeline(tiny_sdxl_dir, tmp_path, monkeypatch,
                                                         no_network):
    """A hub id is read as a folder is: its model_index.json (from huggingface_hub's cache,
    here laid out as a download leaves it, offline) names the SDXL pipeline class."""
    import shutil

    from huggingface_hub import constants

    from generation.engine.checkpoints import folder_pipeline_class

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--imagineer--tiny-sdxl"
    shutil.copytree(tiny_sdxl_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    assert folder_pipeline_class("imagineer/tiny-sdxl") == "StableDiffusionXLPipeline"
    assert folder_pipeline_class("imagineer/not-downloaded") == "StableDiffusionPipeline"
    cache = PipelineCache()
    image = cache.generate("imagineer/tiny-sdxl", QUICK)[0]
    assert type(cache._pipeline).__name__ == "StableDiffusionXLPipeline"
    assert image.tobytes() == cache.generate(str(tiny_sdxl_dir), QUICK)[0].tobytes()


@pytest.mark.django_db(transaction=True)
def test_a_worker_inpaints_with_an_sdxl_base(start_worker, api_as, viewer, tiny_sdxl_file,
                                             media_root):
    """Inpainting through the worker on the tiny SDXL: StableDiffusionXLInpaintPipeline made
    from the loaded base, the source's own pixels outside the mask, the PNG saying how, and
    the pixels the engine draws called directly."""
    from albums.ingest import store_image
    from albums.models import Image
    from generation.engine.pipelines import Source

    from .engine_helpers import box_mask, finished_job, png_of, red_circle, stored_picture

    def stored(picture, name):
        image, _ = store_image(png_of(picture), filename=name, source=Image.Source.UPLOAD,
                               created_by=viewer)
        return image

    base = ModelVersion.from_source(name="tiny-xl", kind="base",
                                    source=str(tiny_sdxl_file)).register()
    base.make_default()
    circle, mask = stored(red_circle(), "circle.png"), stored(box_mask(), "mask.png")
    start_worker(HF_HUB_OFFLINE="1")
    response = api_as(viewer).post("/api/jobs/", {
        "prompt": "a red castle", "width": 64, "height": 64, "steps": 3, "seed": 7,
        "guidance_scale": 7.5, "init_image": circle.pk, "mask": mask.pk, "strength": 1.0,
        "mask_blur": 2}, format="json")
    assert response.status_code == 201, response.content
    job = finished_job(response.json()["id"])
    assert job.status == Status.SUCCEEDED, job.error
    picture = stored_picture(job.images.get())
    drawn = pixels(picture.convert("RGB"))
    far = np.asarray(box_mask(box=(2, 2, 38, 38))) == 0
    assert np.array_equal(drawn[far], pixels(red_circle())[far])
    inside = np.asarray(box_mask(box=(12, 12, 28, 28))) == 255
    assert np.abs(drawn[inside] - pixels(red_circle())[inside]).mean() > 5
    assert "Denoising strength: 1, Mask blur: 2" in picture.text["parameters"]

    cache = PipelineCache()
    expected = cache.generate(str(tiny_sdxl_file), job.generation_params(),
                              source=Source(red_circle(), box_mask()))[0]
    assert type(cache.derived(cache._pipeline, "inpaint")).__name__ == \
        "StableDiffusionXLInpaintPipeline"
    assert np.abs(drawn - pixels(expected)).max() <= 1
