"""Fixtures for the generation tests: the tiny demo model and random LoRAs, built once."""

import pytest


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory):
    """A folder holding the tiny demo Stable Diffusion pipeline (diffusers layout).

    Also puts torch on one thread in this process: the demo model's layers are so small
    that waking more threads costs more than it saves, above all on a shared machine.
    """
    import torch

    from generation.engine.demo import build_demo_pipeline

    torch.set_num_threads(1)

    directory = tmp_path_factory.mktemp("demo-model")
    build_demo_pipeline(directory)
    return directory


@pytest.fixture(scope="session")
def demo_loras(demo_model_dir, tmp_path_factory):
    """Three different random LoRAs for the demo model, as safetensors paths."""
    from generation.engine.lora import make_random_lora

    directory = tmp_path_factory.mktemp("demo-loras")
    return [
        make_random_lora(demo_model_dir, directory / f"lora{seed}.safetensors", seed=seed)
        for seed in (1, 2, 3)
    ]
