"""Sizes per family (rules.FAMILY_SIZES): an SDXL base defaults to 1024 x 1024 on the API
and the generate page and takes 512 to 2048 a side (else 400 naming width or height and
the rule); SD 1.x/2.x bases keep the site settings' default and the general range; a base
built at shapes of its own (the tiny SDXL carrying its configs) takes its own size."""

import pytest

from generation.models import Job, ModelVersion


@pytest.fixture(scope="session")
def sdxl_shaped_file(tiny_sdxl_dir, tmp_path_factory):
    """The tiny SDXL as a single file without its configs: read as SDXL from its keys, its
    size the family's (registration only: its shapes are not SDXL's, it is never loaded)."""
    from diffusers import StableDiffusionXLPipeline

    from generation.engine.checkpoints import write_original_checkpoint

    pipeline = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir)
    path = tmp_path_factory.mktemp("sdxl-shaped") / "xl.safetensors"
    return write_original_checkpoint(pipeline, path)


@pytest.mark.django_db
def test_an_sdxl_base_defaults_to_1024_and_refuses_sizes_outside_its_range(
        api_as, viewer, demo_base, sdxl_shaped_file, tiny_sdxl_file):
    xl = ModelVersion.from_source(name="xl", kind="base", source=str(sdxl_shaped_file)).register()
    assert (xl.family, xl.native_size, xl.size_rule()) == ("sdxl", None,
                                                           ((1024, 1024), (512, 2048)))
    client = api_as(viewer)
    job = client.post("/api/jobs/", {"prompt": "a castle", "model": xl.pk}, format="json")
    assert job.status_code == 201, job.content
    assert (job.json()["width"], job.json()["height"]) == (1024, 1024)
    bucket = client.post("/api/jobs/", {"prompt": "a castle", "model": xl.pk, "width": 1216,
                                        "height": 832}, format="json")
    assert bucket.status_code == 201, bucket.content
    count = Job.objects.count()
    for sent, field in (({"width": 256, "height": 1024}, "width"),
                        ({"width": 1024, "height": 448}, "height")):
        refused = client.post("/api/jobs/", {"prompt": "a castle", "model": xl.pk, **sent},
                              format="json")
        assert refused.status_code == 400, refused.content
        assert list(refused.json()) == [field]
        assert (f"{field} must be between 512 and 2048 for a Stable Diffusion XL base model; "
                f"got {sent[field]}.") == refused.json()[field][0]
    assert Job.objects.count() == count  # nothing queued on a refusal

    # SD 1.x: the site settings' default and the general range.
    demo = client.post("/api/jobs/", {"prompt": "a castle", "width": 64, "height": 64},
                       format="json")
    assert demo.status_code == 201, demo.content
    # A base at shapes of its own: its own size, the general range.
    tiny = ModelVersion.from_source(name="tiny-xl", kind="base",
                                    source=str(tiny_sdxl_file)).register()
    assert tiny.native_size < 512 and tiny.size_rule()[1] == (64, 2048)
    own = client.post("/api/jobs/", {"prompt": "a castle", "model": tiny.pk}, format="json")
    assert own.status_code == 201, own.content
    assert own.json()["width"] == tiny.native_size

    schema = client.get("/api/schema/?format=json").json()
    width = schema["components"]["schemas"]["JobCreateRequest"]["properties"]["width"]
    assert "sdxl: 512 to 2048, default 1024x1024" in width["description"]


@pytest.mark.django_db
def test_the_generate_page_offers_the_bases_family_size(client, viewer, demo_base,
                                                        sdxl_shaped_file):
    xl = ModelVersion.from_source(name="xl", kind="base", source=str(sdxl_shaped_file)).register()
    client.force_login(viewer)
    page = client.get("/generate/").content.decode()
    assert '<option value="64x64" selected>' in page or 'value="512x512" selected' in page
    assert "1216 × 832 (SDXL)" in page
    assert f"&quot;{xl.pk}&quot;: &quot;1024x1024&quot;" in page  # model_sizes.js's map
    xl.make_default()
    page = client.get("/generate/").content.decode()
    assert '<option value="1024x1024" selected>' in page
