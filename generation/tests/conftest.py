"""Fixtures for the generation tests: the tiny demo model and random LoRAs, built once."""

import pytest


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
