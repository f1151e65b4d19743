"""The A1111 `parameters` PNG chunk, read back by the sd-parsers package."""

import io

import pytest
from PIL import Image

from generation.engine.metadata import parameters_text, png_bytes
from generation.engine.pipelines import PipelineCache
from generation.tests.engine_helpers import SMALL, params, same_pixels

MODEL_SHA = "0123456789abcdef" * 4
LORA_SHA = "fedcba9876543210" * 4


@pytest.fixture(scope="module")
def image(demo_model_dir):
    return PipelineCache().generate(demo_model_dir, params(["a cat"], [1], **SMALL))[0]


def parse(data):
    from sd_parsers import ParserManager

    return ParserManager().parse(Image.open(io.BytesIO(data)))


def test_it_writes_the_a1111_parameters_text():
    text = parameters_text(
        prompt="a castle on a hill",
        negative_prompt="blurry",
        steps=20,
        sampler="Euler a",
        cfg_scale=7.5,
        seed=1234,
        width=512,
        height=768,
        model_name="demo",
        model_sha256=MODEL_SHA,
        loras=[("ink", LORA_SHA), ("paper", MODEL_SHA)],
    )

    assert text == (
        "a castle on a hill\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1234, Size: 512x768, "
        'Model hash: 0123456789, Model: demo, Lora hashes: "ink: fedcba9876, paper: 0123456789"'
    )


def test_it_leaves_out_what_is_missing_and_quotes_what_would_break_the_line():
    text = parameters_text(
        prompt="a cat",
        steps=4,
        sampler="DDIM",
        cfg_scale=7,
        seed=1,
        width=64,
        height=64,
        model_name="cats, dogs: v2",
    )

    assert text == (
        "a cat\n"
        'Steps: 4, Sampler: DDIM, CFG scale: 7, Seed: 1, Size: 64x64, Model: "cats, dogs: v2"'
    )


def test_it_round_trips_through_sd_parsers(image):
    parameters = parameters_text(
        prompt="a cat in a hat, oil painting",
        negative_prompt="blurry, low quality",
        steps=2,
        sampler="DPM++ 2M",
        cfg_scale=6.5,
        seed=424242,
        width=64,
        height=64,
        model_name="demo",
        model_sha256=MODEL_SHA,
        loras=[("ink", LORA_SHA)],
    )

    data = png_bytes(image, parameters)
    info = parse(data)

    assert info.generator.name == "AUTOMATIC1111"
    assert [prompt.value for prompt in info.prompts] == ["a cat in a hat, oil painting"]
    assert [prompt.value for prompt in info.negative_prompts] == ["blurry, low quality"]
    [sampler] = info.samplers
    assert sampler.name == "DPM++ 2M"
    assert str(sampler.parameters["seed"]) == "424242"
    assert str(sampler.parameters["steps"]) == "2"
    assert str(sampler.parameters["cfg_scale"]) == "6.5"
    assert (sampler.model.name, sampler.model.hash) == ("demo", "0123456789")
    assert same_pixels(Image.open(io.BytesIO(data)), image)


def test_it_keeps_a_prompt_that_is_not_latin_1(image):
    parameters = parameters_text(
        prompt="猫 in the snow ❄",
        steps=2,
        sampler="Euler",
        cfg_scale=7,
        seed=1,
        width=64,
        height=64,
    )

    data = png_bytes(image, parameters)

    assert Image.open(io.BytesIO(data)).text["parameters"] == parameters
    assert [prompt.value for prompt in parse(data).prompts] == ["猫 in the snow ❄"]
