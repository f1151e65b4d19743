"""LoRA training on an SDXL base (the tiny SDXL of generation's tests, as a single file in
the original layout): the diffusers SDXL recipe (both encoders' embeddings, the pooled
text, size and crop conditioning), saved in both layouts, registered as an SDXL LoRA by
the real training worker, and its kohya copy loaded by a fresh generation worker."""

import pytest
import torch
from django.core.files.storage import default_storage
from safetensors.torch import load_file

from imagineer.testing import wait_for
from training.models import TrainingRun
from training.trainer import TrainingConfig, TrainingImages, read_lora_metadata, train_lora

from .conftest import QUICK, draw_checkerboard


def test_it_trains_an_sdxl_lora_with_size_and_crop_conditioning(tiny_sdxl_file, tmp_path):
    from training.trainer import Example

    (tmp_path / "images").mkdir()
    examples = [Example(draw_checkerboard(tmp_path / "images" / f"b{i}.png", size=96, shift=i),
                        f"a red checkerboard {i}") for i in range(2)]
    config = TrainingConfig(resolution=64, steps=2, rank=4, alpha=4, learning_rate=1e-2,
                           trigger_word="chk", seed=7, center_crop=True, random_flip=False)

    # The conditioning of each picture: its size before resizing, the crop, the target.
    images = TrainingImages(examples, ["a", "b"], config)
    _, _, time_ids = images.conditioned_batch(0, torch.Generator().manual_seed(0))
    assert time_ids.tolist() == [[96.0, 96.0, 0.0, 0.0, 64.0, 64.0]]

    result = train_lora(tiny_sdxl_file, examples, tmp_path / "lora", config, device="cpu")
    assert [step for step, _ in result.losses] == [1, 2]
    assert all(loss == loss for _, loss in result.losses)  # not NaN
    layers = load_file(result.lora_path)
    assert any("attn2.to_k" in key for key in layers)
    assert any(key.endswith(("lora_B.weight", "lora.up.weight")) and value.abs().sum() > 0
               for key, value in layers.items())  # trained: "up" starts at zero
    kohya = load_file(result.kohya_path)
    assert any(key.startswith("lora_unet_") and key.endswith(".alpha") for key in kohya)
    assert read_lora_metadata(result.kohya_path)["ss_base_model_version"] == "sdxl_base_v1-0"


@pytest.mark.django_db(transaction=True)
def test_a_training_worker_trains_an_sdxl_lora_that_a_fresh_worker_loads_as_kohya(
        training_worker, start_worker, api_as, editor, make_album, tiny_sdxl_file):
    from generation.models import Job, ModelVersion

    base = ModelVersion.from_source(name="tiny-xl", kind="base",
                                    source=str(tiny_sdxl_file)).register()
    assert base.family == "sdxl" and base.is_default
    training_worker()
    album = make_album(2)
    response = api_as(editor).post("/api/training-runs/", {
        "album": album.pk, "name": "xl-boards", "base_model": base.pk,
        **{**QUICK, "steps": 2}}, format="json")
    assert response.status_code == 201, response.content
    run = wait_for(lambda: (run := TrainingRun.objects.get(pk=response.json()["id"])).status in
                   ("succeeded", "failed") and run, timeout=300, message="the SDXL run to end")
    assert run.status == "succeeded", run.error + run.log_tail
    assert (run.lora.family, run.lora.kind) == ("sdxl", "lora")
    assert len(run.validation_images()) == 1

    # The kohya copy, registered as a LoRA and used by a fresh generation worker.
    kohya = ModelVersion.from_source(name="xl-boards-kohya", kind="lora", family="sdxl",
                                     source=default_storage.path(run.kohya_file.name)).register()
    start_worker(HF_HUB_OFFLINE="1")
    job = api_as(editor).post("/api/jobs/", {
        "prompt": "chk, a red checkerboard", "width": 64, "height": 64, "steps": 3, "seed": 3,
        "loras": [{"id": kohya.pk, "weight": 1.0}]}, format="json")
    assert job.status_code == 201, job.content
    done = wait_for(lambda: (j := Job.objects.get(pk=job.json()["id"])).is_finished and j,
                    timeout=300, message="the SDXL generation job to end")
    assert done.status == "succeeded", done.error
    assert done.images.count() == 1
