"""A VAE override per base (A1111's "SD VAE"): a VAE file registered as a model of kind
`vae`, chosen for a base at registration or later (admin, API), checked to fit it (its
family's VAEs, its latent channels: else 400 naming `vae`), loaded by the worker in place
of the base's own (the pipeline cache keyed on it) and named in the PNG text as A1111
names it. The VAEs are built here from the demo model's: one with its decoder changed,
one of 8 latent channels."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.engine.params import GenerationParams
from generation.engine.pipelines import PipelineCache
from generation.models import ModelVersion, Status

from .engine_helpers import finished_job, stored_picture

QUICK = GenerationParams("a red square", width=64, height=64, steps=4, guidance_scale=5.0,
                         seed=1234)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="session")
def demo_vaes(demo_model_dir, tmp_path_factory):
    """{"other": a VAE of the demo model's shapes whose decoder draws otherwise (original
    layout, carrying its config), "wide": one of 8 latent channels}."""
    import torch
    from diffusers import AutoencoderKL

    from generation.engine.vae import write_vae_file

    folder = tmp_path_factory.mktemp("vaes")
    vae = AutoencoderKL.from_pretrained(demo_model_dir, subfolder="vae")
    generator = torch.Generator().manual_seed(21)
    with torch.no_grad():
        for parameter in vae.decoder.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    wide = AutoencoderKL.from_config({**vae.config, "latent_channels": 8})
    return {"other": write_vae_file(vae, folder / "other-vae.safetensors"),
            "wide": write_vae_file(wide, folder / "wide-vae.safetensors"),
            "module": vae}


def direct(model_dir, vae, params):
    """The image diffusers draws with the demo model and `vae`, called directly."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(
        model_dir, vae=vae, safety_checker=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(prompt=[params.prompt], negative_prompt=[""], width=params.width,
                    height=params.height, num_inference_steps=params.steps,
                    guidance_scale=params.guidance_scale,
                    generator=[torch.Generator("cpu").manual_seed(params.seed)]).images[0]


def test_a_vae_file_is_read_and_loaded_in_place_of_the_bases_own(
        demo_model_dir, demo_vaes, demo_loras, tmp_path, no_network):
    import torch
    from safetensors.torch import save_file

    from generation.engine.vae import NotAVae, inspect_vae

    info = inspect_vae(demo_vaes["other"])
    assert (info.latent_channels, info.original_layout, info.own_config) == (4, True, True)
    assert inspect_vae(demo_vaes["wide"]).latent_channels == 8
    with pytest.raises(NotAVae, match="is a LoRA, not a VAE"):
        inspect_vae(demo_loras[0])
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(NotAVae, match="is not a VAE: it has no encoder and decoder"):
        inspect_vae(other)

    cache = PipelineCache()
    own = cache.generate(str(demo_model_dir), QUICK)[0]
    other = cache.generate(str(demo_model_dir), QUICK, vae=(demo_vaes["other"], "sd15"))[0]
    assert cache.load_count == 2 and cache.vae_source == str(demo_vaes["other"])
    assert np.abs(pixels(other) - pixels(own)).mean() > 2  # another decoder, another picture
    assert np.abs(pixels(other) - pixels(direct(demo_model_dir, demo_vaes["module"],
                                                QUICK))).max() <= 1
    # The same VAE again: no reload; the base's own again: a reload.
    cache.generate(str(demo_model_dir), QUICK, vae=(demo_vaes["other"], "sd15"))
    assert cache.load_count == 2
    again = cache.generate(str(demo_model_dir), QUICK)[0]
    assert cache.load_count == 3 and again.tobytes() == own.tobytes()


@pytest.mark.django_db
def test_a_vae_is_registered_and_chosen_for_a_base_only_where_it_fits(
        api_as, admin_user, demo_base, demo_vaes, tiny_sdxl_file, no_network):
    client = api_as(admin_user)
    vae = client.post("/api/models/", {"name": "other-vae", "kind": "vae", "family": "sd15",
                                       "source": str(demo_vaes["other"])}, format="json")
    assert vae.status_code == 201, vae.content
    assert vae.json()["kind"] == "vae" and vae.json()["sha256"]
    wide = client.post("/api/models/", {
        "name": "wide-vae", "kind": "vae", "family": "sd15",
        "file": SimpleUploadedFile("wide.safetensors", demo_vaes["wide"].read_bytes())},
        format="multipart")
    assert wide.status_code == 201, wide.content
    xl_vae = ModelVersion.from_source(name="xl-vae", kind="vae", family="sdxl",
                                      source=str(demo_vaes["other"])).register()
    admins_vae = ModelVersion.from_source(name="admins-vae", kind="vae", family="sd15",
                                          usable_by="admin",
                                          source=str(demo_vaes["other"])).register()

    # A whole checkpoint is no VAE; a VAE is no base.
    not_vae = client.post("/api/models/", {"name": "x", "kind": "vae",
                                           "source": str(tiny_sdxl_file)}, format="json")
    assert not_vae.status_code == 400
    assert "whole checkpoint, not a VAE alone" in not_vae.json()["source"][0]
    not_base = client.post("/api/models/", {"name": "x", "kind": "base",
                                            "source": str(demo_vaes["other"])}, format="json")
    assert not_base.status_code == 400
    assert "is a VAE alone, not a base checkpoint (register it as a VAE" in \
        not_base.json()["source"][0]

    url = f"/api/models/{demo_base.pk}/"
    for bad, status, words in (
            (wide.json()["id"], 400, "has 8 latent channels; this base model's VAE has 4"),
            (xl_vae.pk, 400, "is a Stable Diffusion XL VAE and this base model is Stable "
                             "Diffusion 1.x"),
            (admins_vae.pk, 400, "is usable by admins only, and this base model by everyone"),
            # Not a VAE: as an id naming no VAE (core.api: 404 naming the field).
            (demo_base.pk, 404, "vae must be an active VAE your role may use")):
        response = client.patch(url, {"vae": bad}, format="json")
        assert response.status_code == status, response.content
        assert words in response.json()["vae"][0]
    demo_base.refresh_from_db()
    assert demo_base.vae is None  # nothing half-written

    chosen = client.patch(url, {"vae": vae.json()["id"]}, format="json")
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["vae"] == vae.json()["id"]
    demo_base.refresh_from_db()
    assert demo_base.engine_vae() == (str(demo_vaes["other"]), "sd15")
    # At registration too: a second demo base with the wide VAE is refused, naming vae.
    again = client.post("/api/models/", {"name": "demo2", "kind": "base", "family": "sd15",
                                         "source": demo_base.source,
                                         "vae": wide.json()["id"]}, format="json")
    assert again.status_code == 400 and "8 latent channels" in again.json()["vae"][0]
    cleared = client.patch(url, {"vae": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["vae"] is None


@pytest.mark.django_db(transaction=True)
def test_the_worker_draws_with_the_bases_vae_and_names_it_in_the_png(
        start_worker, api_as, viewer, demo_model_dir, demo_vaes):
    base = ModelVersion.from_source(name="demo", kind="base", source=str(demo_model_dir),
                                    family="sd15").register()
    vae = ModelVersion.from_source(name="other-vae.safetensors", kind="vae", family="sd15",
                                   source=str(demo_vaes["other"])).register()
    start_worker(HF_HUB_OFFLINE="1")
    client = api_as(viewer)

    def draw():
        response = client.post("/api/jobs/", {
            "prompt": QUICK.prompt, "width": 64, "height": 64, "steps": QUICK.steps,
            "guidance_scale": QUICK.guidance_scale, "seed": QUICK.seed}, format="json")
        assert response.status_code == 201, response.content
        job = finished_job(response.json()["id"])
        assert job.status == Status.SUCCEEDED, job.error
        image = job.images.get()
        return image, stored_picture(image)

    _, own = draw()
    assert "VAE" not in own.text["parameters"]
    base.vae = vae
    base.full_clean()
    base.save()
    image, other = draw()
    assert np.abs(pixels(other.convert("RGB")) - pixels(own.convert("RGB"))).mean() > 2
    expected = direct(demo_model_dir, demo_vaes["module"], QUICK)
    assert np.abs(pixels(other.convert("RGB")) - pixels(expected)).max() <= 1
    assert (f"Model: demo, VAE hash: {vae.sha256[:10]}, VAE: other-vae.safetensors"
            in other.text["parameters"])
    assert image.params["vae"] == "other-vae.safetensors"
    assert image.params["vae_hash"] == vae.sha256[:10]
