"""The trainer's inputs: captions, image modes and sizes, unreadable files, config checks."""

import numpy as np
import pytest
from PIL import Image

from training.trainer import (
    Example,
    TrainingConfig,
    TrainingImages,
    build_captions,
    open_rgb,
    train_lora,
)


def test_it_puts_the_trigger_word_before_each_caption():
    log = []
    examples = [Example("a.png", "a red board"), Example("b.png", None), Example("c.png", "  ")]

    captions = build_captions(examples, "chk", log.append)

    assert captions == ["chk, a red board", "chk", "chk"]
    assert len(log) == 2
    assert log[0].startswith("warning: b.png has no caption")
    assert "trigger word alone" in log[0]


def test_it_keeps_a_caption_that_already_names_the_trigger_word_as_written():
    examples = [Example("a.png", "a red zxq on a blue background"),
                Example("b.png", "ZXQ, a ring"), Example("c.png", "a zxqs board")]

    assert build_captions(examples, "zxq") == [
        "a red zxq on a blue background", "ZXQ, a ring", "zxq, a zxqs board"]


def test_it_trains_on_the_caption_alone_without_a_trigger_word():
    assert build_captions([Example("a.png", "a red board")], "") == ["a red board"]


def test_it_warns_of_uncaptioned_images_during_a_run(demo_model_dir, tmp_path):
    from .conftest import draw_checkerboard

    examples = [
        Example(draw_checkerboard(tmp_path / "a.png"), "a board"),
        Example(draw_checkerboard(tmp_path / "b.png"), None),
    ]
    log = []
    config = TrainingConfig(rank=2, alpha=2, steps=1, resolution=32, trigger_word="chk")

    result = train_lora(demo_model_dir, examples, tmp_path / "lora", config, on_log=log.append)

    assert any(line.startswith("warning: b.png has no caption") for line in log)
    assert result.metadata["dataset_size"] == "2"


def save(image, path, **options):
    image.save(path, **options)
    return path


@pytest.fixture
def odd_images(tmp_path):
    """Images in the modes and sizes albums hold, beside plain RGB."""
    # A palette image: colour 0 transparent, colour 1 red on the left half.
    palette = Image.new("P", (48, 48), 0)
    palette.putpalette([0, 0, 0, 220, 20, 20])
    palette.paste(1, (0, 0, 24, 48))
    grey16 = Image.fromarray(np.full((40, 90), 128 * 257, dtype=np.uint16))
    return {
        "palette": save(palette, tmp_path / "palette.png", transparency=0),
        "grey-alpha": save(Image.new("LA", (90, 40), (100, 128)), tmp_path / "la.png"),
        "cmyk": save(Image.new("CMYK", (33, 70), (0, 255, 255, 0)), tmp_path / "cmyk.jpg"),
        "grey-16-bit": save(grey16, tmp_path / "grey16.png"),
        "rgba": save(Image.new("RGBA", (200, 50), (0, 0, 255, 0)), tmp_path / "rgba.png"),
        "one-bit": save(Image.new("1", (10, 10), 1), tmp_path / "one.png"),
        "tiny": save(Image.new("RGB", (5, 7), "green"), tmp_path / "tiny.png"),
    }


def test_it_converts_odd_image_modes_to_rgb(odd_images):
    for name, path in odd_images.items():
        image = open_rgb(path)
        assert image.mode == "RGB", name


def test_it_scales_16_bit_grey_instead_of_clipping_it(odd_images):
    assert Image.open(odd_images["grey-16-bit"]).mode == "I;16"
    assert open_rgb(odd_images["grey-16-bit"]).getpixel((0, 0)) == (128, 128, 128)


def test_it_puts_transparent_pixels_on_white(odd_images):
    assert open_rgb(odd_images["rgba"]).getpixel((0, 0)) == (255, 255, 255)
    assert open_rgb(odd_images["palette"]).getpixel((0, 0)) == (220, 20, 20)
    assert open_rgb(odd_images["palette"]).getpixel((47, 0)) == (255, 255, 255)


@pytest.mark.parametrize("center_crop", [True, False])
def test_it_crops_every_image_to_the_resolution(odd_images, center_crop):
    import torch

    examples = [Example(path, name) for name, path in odd_images.items()]
    config = TrainingConfig(resolution=32, center_crop=center_crop, random_flip=True)
    images = TrainingImages(examples, [e.caption for e in examples], config)
    generator = torch.Generator().manual_seed(0)

    assert len(images) == len(odd_images)
    for index in range(len(images)):
        pixels = images.sample(index, generator)
        assert pixels.shape == (3, 32, 32)
        assert pixels.min() >= -1 and pixels.max() <= 1
    batch, _ = TrainingImages(examples, ["x"] * len(examples), config).batch(0, generator)
    assert batch.shape == (1, 3, 32, 32)


def test_it_center_crops_the_middle_of_a_wide_image(tmp_path):
    # 96 x 32: black, white, black thirds; the center crop is the white third.
    image = Image.new("RGB", (96, 32), "black")
    image.paste((255, 255, 255), (32, 0, 64, 32))
    path = save(image, tmp_path / "wide.png")
    config = TrainingConfig(resolution=32, center_crop=True)

    pixels = TrainingImages([Example(path)], [""], config).sample(0, None)

    assert pixels.min() == 1.0


def test_it_skips_unreadable_images_with_a_warning(tmp_path, odd_images):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    log = []
    examples = [Example(broken), Example(odd_images["cmyk"])]

    images = TrainingImages(examples, ["", ""], TrainingConfig(resolution=32), log.append)

    assert len(images) == 1
    assert images.captions == [""]
    assert log[0].startswith("warning: skipped broken.png")


def test_it_refuses_a_training_set_without_a_usable_image(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="examples: no usable image"):
        TrainingImages([Example(broken)], [""], TrainingConfig(resolution=32))
    with pytest.raises(ValueError, match="examples: there is no image"):
        train_lora(tmp_path, [], tmp_path / "lora", TrainingConfig(resolution=32))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"rank": 0}, "rank must be greater than 0"),
        ({"learning_rate": -1e-4}, "learning_rate must be greater than 0"),
        ({"steps": 0}, "steps must be greater than 0"),
        ({"resolution": 60}, "resolution must be a multiple of 8"),
        ({"checkpoint_every": -1}, "checkpoint_every must be 0 or more"),
        ({"loss_every": 0}, "loss_every must be greater than 0"),
    ],
)
def test_it_refuses_a_config_it_cannot_run(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**fields).check()
