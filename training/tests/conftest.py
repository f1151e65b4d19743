"""Fixtures for the trainer's tests: the tiny demo model and small drawn training sets."""

import pytest
from PIL import Image, ImageDraw


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train on one CPU thread: with two, torch's threads wait on each other whenever other
    processes share the cores, and a step of the tiny model takes ten times longer."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory):
    """The demo Stable Diffusion pipeline, built once per test session."""
    from generation.engine.demo import build_demo_pipeline

    directory = tmp_path_factory.mktemp("demo-model")
    build_demo_pipeline(directory)
    return directory


def draw_checkerboard(path, size=64, square=8, shift=0):
    """A red and white checkerboard, its squares shifted by `shift` squares."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for top in range(0, size, square):
        for left in range(0, size, square):
            if (top // square + left // square + shift) % 2 == 0:
                draw.rectangle([left, top, left + square - 1, top + square - 1], fill=(220, 20, 20))
    image.save(path)
    return path


@pytest.fixture
def checkerboards(tmp_path):
    """Six captioned checkerboard pictures, as trainer Examples."""
    from training.trainer import Example

    folder = tmp_path / "images"
    folder.mkdir()
    return [
        Example(draw_checkerboard(folder / f"board-{i}.png", shift=i), f"a red checkerboard {i}")
        for i in range(6)
    ]
