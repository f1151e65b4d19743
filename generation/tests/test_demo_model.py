"""The trained demo model committed in generation/engine/demo_weights/: its files match
their sha256, it fits in 16 MB, and installing it refuses a changed file."""

import pytest

from generation.engine.demo import (
    DEMO_WEIGHTS,
    DemoWeightsError,
    install_demo_model,
    read_sums,
    verify_weights,
)


def test_the_committed_weights_match_their_sha256_and_fit_in_16_mb():
    sums = verify_weights()
    assert {"model_index.json", "unet/diffusion_pytorch_model.safetensors",
            "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
            "tokenizer/tokenizer.json"} <= set(sums)
    size = sum((DEMO_WEIGHTS / name).stat().st_size for name in sums)
    assert size <= 16 * 1024 * 1024


def test_install_refuses_a_changed_file_and_leaves_nothing(tmp_path):
    import shutil

    source = tmp_path / "weights"
    shutil.copytree(DEMO_WEIGHTS, source)
    (source / "scheduler" / "scheduler_config.json").write_text("{}")
    with pytest.raises(DemoWeightsError, match="scheduler/scheduler_config.json"):
        install_demo_model(tmp_path / "models" / "demo", source=source)
    assert not (tmp_path / "models" / "demo").exists()
    assert not list(tmp_path.glob("models/*"))

    installed = install_demo_model(tmp_path / "models" / "demo")
    assert read_sums(installed) == read_sums(DEMO_WEIGHTS)
