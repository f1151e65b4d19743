"""Fixtures for the generation tests: the tiny demo model and random LoRAs, built once."""

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: nothing may come from the hub."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory):
    """A folder holding the demo model (diffusers layout), installed from demo_weights/.

    Also puts torch on one thread in this process: the demo model's layers are so small
    that waking more threads costs more than it saves, above all on a shared machine.
    """
    import torch

    from generation.engine.demo import install_demo_model

    torch.set_num_threads(1)

    directory = tmp_path_factory.mktemp("demo-model")
    return install_demo_model(directory)


@pytest.fixture(scope="session")
def demo_loras(demo_model_dir, tmp_path_factory):
    """Three different random LoRAs for the demo model, as safetensors paths."""
    from generation.engine.lora import make_random_lora

    directory = tmp_path_factory.mktemp("demo-loras")
    return [
        make_random_lora(demo_model_dir, directory / f"lora{seed}.safetensors", seed=seed)
        for seed in (1, 2, 3)
    ]


@pytest.fixture
def demo_base(db, demo_model_dir):
    """The demo model registered as the default base model."""
    from generation.models import ModelVersion

    return ModelVersion.from_source(name="demo", kind="base", source=str(demo_model_dir),
                                    family="sd15").register()


@pytest.fixture
def make_lora(db, demo_base, demo_loras):
    """Register one of the random demo LoRAs (0, 1 or 2) as a LoRA model."""
    from generation.models import ModelVersion

    def make(index=0, name=None, **fields):
        return ModelVersion.from_source(name=name or f"lora{index}", kind="lora",
                                        source=str(demo_loras[index]), family="sd15",
                                        **fields).register()

    return make


# Small and quick on the tiny model: what the worker tests submit.
QUICK = {"width": 64, "height": 64, "steps": 4, "guidance_scale": 5.0, "seed": 1234}


@pytest.fixture
def quick_job(api_as, viewer, demo_base):
    """Submit a quick job through the API as the viewer; returns the response JSON."""

    def submit(user=None, **params):
        client = api_as(user or viewer)
        response = client.post("/api/jobs/", {"prompt": "a red square", **QUICK, **params},
                               format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return submit


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory):
    """A tiny SDXL pipeline (the real SDXL component classes, random weights) as a
    diffusers folder (generation/engine/tiny_sdxl.py)."""
    import torch

    from generation.engine.tiny_sdxl import build_tiny_sdxl_pipeline

    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("tiny-sdxl")
    build_tiny_sdxl_pipeline(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_sdxl_file(tiny_sdxl_dir, tmp_path_factory):
    """The tiny SDXL as a single file in the original SDXL key layout (conditioner.
    embedders.0/1), carrying its configs: its shapes are its own, no real model's."""
    from diffusers import StableDiffusionXLPipeline

    from generation.engine.checkpoints import write_original_checkpoint

    pipeline = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir)
    path = tmp_path_factory.mktemp("tiny-sdxl-file") / "tiny-xl.safetensors"
    return write_original_checkpoint(pipeline, path, carry_config=True)


@pytest.fixture(scope="session")
def tiny_sdxl_loras(tiny_sdxl_dir, tmp_path_factory):
    """Two random LoRAs for the tiny SDXL: {"diffusers": path, "kohya": path}."""
    from generation.engine.lora import make_random_lora

    directory = tmp_path_factory.mktemp("tiny-sdxl-loras")
    return {layout: make_random_lora(tiny_sdxl_dir, directory / f"xl-{layout}.safetensors",
                                     seed=seed, kohya=layout == "kohya")
            for seed, layout in ((5, "diffusers"), (6, "kohya"))}
