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

# The most mean absolute error (0-255) of the VAE's round trip over any colour's pixels
# (measured: see docs/performance.md, "The demo model").
VAE_MAX_ERROR = 14.0


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


def test_its_vae_gives_back_every_colour_and_shape_it_is_given():
    """decode(encode(x)) against x, alone (the UNet's colours can be no better): the mean
    error over each colour's pixels stays small, and the judge reads every round trip as
    it reads the picture itself (the colours always, everything nearly always)."""
    import numpy as np
    import torch
    from diffusers import AutoencoderKL
    from PIL import Image

    from generation.engine.demo_training import pictures_tensor, vae_errors
    from generation.engine.judge import judge
    from generation.engine.world import sample_specs

    torch.set_num_threads(1)
    vae = AutoencoderKL.from_pretrained(DEMO_WEIGHTS / "vae", torch_dtype=torch.float32)
    specs = sample_specs(99, 80)
    errors = vae_errors(vae, specs)
    assert max(errors.values()) < VAE_MAX_ERROR, errors

    with torch.no_grad():
        out = vae.decode(vae.encode(pictures_tensor(specs)).latent_dist.mean).sample
    arrays = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    readings = [(spec, judge(Image.fromarray(np.ascontiguousarray(array))).agrees(spec))
                for spec, array in zip(specs, arrays, strict=True)]
    # Colours always; shape, position and size nearly always (a small circle and a small
    # square are 4 x 4 latent pixels).
    assert [spec for spec, agrees in readings
            if not (agrees["colour"] and agrees["background"])] == []
    assert sum(all(agrees.values()) for _, agrees in readings) >= 0.8 * len(readings)


def test_every_sampler_starts_from_noise_that_hides_the_picture():
    """The demo model's schedule (generation/engine/demo_training.py, `demo_betas`): at
    the first step of every sampler the engine offers, built from the shipped config, at
    most 1 % of the picture is left in the latent, so where the shape goes is the prompt's
    to say (SD 1.5's schedule leaves 6.8 %: enough, in 16 x 16 latents, to show it)."""
    import json

    from generation.engine.pipelines import SCHEDULERS, scheduler_class

    config = json.loads((DEMO_WEIGHTS / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction"
    for name in SCHEDULERS:
        scheduler = scheduler_class(name).from_config(config)
        scheduler.set_timesteps(20)
        first = int(scheduler.timesteps[0])
        signal = float(scheduler.alphas_cumprod[first]) ** 0.5
        assert first == 999 and signal <= 0.0101, (name, first, signal)
        assert scheduler.config.prediction_type == "v_prediction", name
