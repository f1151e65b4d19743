"""The engine's image to image on the tiny demo model: img2img, inpainting (the masked
latents path of a 4-channel UNet, and a 9-channel inpainting UNet), outpainting and the
hires fix, and the A1111 fields of their PNG text as sd-parsers reads them."""

import io

import numpy as np
import pytest
from PIL import Image

from generation.engine.metadata import png_bytes
from generation.engine.params import GenerationParams
from generation.engine.pipelines import PipelineCache, Source, canvas

from .engine_helpers import box_mask, pixels, red_circle

QUICK = {"width": 64, "height": 64, "steps": 4, "seed": 7}


@pytest.fixture(scope="module")
def cache():
    return PipelineCache()


def parse(picture, text):
    from sd_parsers import ParserManager

    return ParserManager().parse(Image.open(io.BytesIO(png_bytes(picture, text))))


def test_it_draws_from_a_picture_and_says_so_in_the_png_text(cache, demo_model_dir):
    source = Source(red_circle())
    params = GenerationParams("a green square", strength=0.5, **QUICK)
    result = cache.generate(demo_model_dir, params, source=source)
    assert result[0].size == (64, 64)
    assert result.mode == "img2img"
    text = result.parameters_text(0, model_name="demo")
    assert "Denoising strength: 0.5" in text and "Mask blur" not in text
    info = parse(result[0], text)
    assert info.metadata["Denoising strength"] == "0.5"
    assert info.samplers[0].parameters["seed"] == "7"

    # Strength is how much of the schedule runs (about strength x steps): what it costs.
    totals = {}
    for strength in (0.5, 1.0):
        steps = []
        cache.generate(demo_model_dir, GenerationParams("a green square", strength=strength,
                                                        **{**QUICK, "steps": 8}),
                       source=source, on_step=lambda s, t, steps=steps: steps.append(t))
        totals[strength] = steps[-1]
    assert totals[0.5] < totals[1.0] and abs(totals[0.5] - totals[1.0] / 2) <= 1


def test_a_strength_too_low_for_one_step_gives_the_source_back(cache, demo_model_dir):
    result = cache.generate(demo_model_dir, GenerationParams("x", strength=0.0, **QUICK),
                            source=Source(red_circle()))
    assert np.array_equal(pixels(result[0]), pixels(red_circle()))


def test_inpainting_keeps_the_pixels_outside_the_mask(cache, demo_model_dir):
    mask = box_mask()
    params = GenerationParams("a green square", strength=1.0, mask_blur=2, num_images=2,
                              **QUICK)
    result = cache.generate(demo_model_dir, params, source=Source(red_circle(), mask))
    assert result.mode == "inpaint" and len(result) == 2
    far_from_mask = np.asarray(box_mask(box=(2, 2, 38, 38))) == 0  # past the blur
    for image in result:
        assert image.size == (64, 64)
        assert np.array_equal(pixels(image)[far_from_mask], pixels(red_circle())[far_from_mask])
        inside = np.asarray(box_mask(box=(12, 12, 28, 28))) > 0
        assert not np.array_equal(pixels(image)[inside], pixels(red_circle())[inside])
    info = parse(result[0], result.parameters_text(0))
    assert info.metadata["Mask blur"] == "2"
    assert info.metadata["Denoising strength"] == "1"


def test_without_keep_unmasked_the_whole_picture_is_the_models(cache, demo_model_dir):
    params = GenerationParams("a green square", strength=1.0, keep_unmasked=False, **QUICK)
    result = cache.generate(demo_model_dir, params, source=Source(red_circle(), box_mask()))
    outside = np.asarray(box_mask(box=(2, 2, 38, 38))) == 0
    assert not np.array_equal(pixels(result[0])[outside], pixels(red_circle())[outside])


def test_outpainting_adds_the_pixels_and_keeps_the_picture(cache, demo_model_dir):
    params = GenerationParams("a field", strength=1.0, mask_blur=0, outpaint_left=16,
                              outpaint_down=8, **QUICK)
    result = cache.generate(demo_model_dir, params, source=Source(red_circle()))
    assert result.mode == "inpaint"
    assert result[0].size == (80, 72)
    kept = pixels(result[0])[0:64, 16:80]
    assert np.array_equal(kept, pixels(red_circle()))
    info = parse(result[0], result.parameters_text(0))
    assert info.metadata["Size"] == "80x72"
    assert info.metadata["Outpaint"] == "left 16 right 0 up 0 down 8"


def test_the_canvas_stretches_the_edges_and_masks_the_new_sides():
    params = GenerationParams("x", width=64, height=64, outpaint_up=8, outpaint_right=8)
    picture, mask = canvas(Source(red_circle()), params)
    assert picture.size == mask.size == (72, 72)
    marks = np.asarray(mask)
    assert (marks[:8] == 255).all() and (marks[:, 64:] == 255).all()
    assert (marks[8:, :64] == 0).all()


def test_the_hires_fix_draws_again_at_the_larger_size(cache, demo_model_dir):
    steps = []
    params = GenerationParams("a red circle", hires_scale=1.5, hires_strength=0.5, **QUICK)
    result = cache.generate(demo_model_dir, params, on_step=lambda s, t: steps.append((s, t)))
    assert result[0].size == (96, 96)
    assert result.mode == "txt2img"
    assert steps[-1][0] == steps[-1][1], "the two passes count as one run"
    info = parse(result[0], result.parameters_text(0))
    assert info.metadata["Hires upscale"] == "1.5"
    assert info.metadata["Hires upscaler"] == "Lanczos"
    assert info.metadata["Denoising strength"] == "0.5"
    assert info.metadata["Size"] == "64x64"


def test_the_hires_fix_is_refused_from_a_source(cache, demo_model_dir):
    with pytest.raises(ValueError, match="hires"):
        cache.generate(demo_model_dir, GenerationParams("x", hires_scale=2.0, **QUICK),
                       source=Source(red_circle()))


def test_a_9_channel_inpainting_unet_inpaints_and_draws(tmp_path):
    """An inpainting checkpoint (9 input channels) takes the masked picture; it also
    draws from text alone (a grey canvas drawn over whole)."""
    import torch

    from generation.engine.demo import (
        DEMO_TEXT_ENCODER_CONFIG,
        DEMO_UNET_CONFIG,
        DEMO_VAE_CONFIG,
        build_random_pipeline,
    )

    torch.set_num_threads(1)
    build_random_pipeline(tmp_path, seed=3, unet_config={**DEMO_UNET_CONFIG, "in_channels": 9},
                          vae_config=DEMO_VAE_CONFIG,
                          text_encoder_config=DEMO_TEXT_ENCODER_CONFIG)
    cache = PipelineCache()
    params = GenerationParams("a green square", strength=1.0, mask_blur=0, **QUICK)
    result = cache.generate(tmp_path, params, source=Source(red_circle(), box_mask()))
    outside = np.asarray(box_mask()) == 0
    assert np.array_equal(pixels(result[0])[outside], pixels(red_circle())[outside])
    plain = cache.generate(tmp_path, GenerationParams("a red circle", **QUICK))
    assert plain[0].size == (64, 64)
    assert plain.mode == "txt2img"
