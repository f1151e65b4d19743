"""Single-file checkpoints, offline: the family read from the keys, registration by path
and by upload with the network blocked, generation from them, the shipped configs and
CLIP's tokenizer built from open-clip-torch's BPE file (no hub)."""

import hashlib
import json

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.torch import save_file

from generation.engine.checkpoints import CONFIGS, inspect_checkpoint, write_original_checkpoint
from generation.engine.clip_tokenizer import clean_prompt, write_clip_tokenizer
from generation.engine.params import GenerationParams
from generation.engine.pipelines import PipelineCache
from generation.models import ModelVersion

QUICK = GenerationParams("a red castle", width=64, height=64, steps=3, seed=7)


@pytest.fixture(scope="session")
def demo_single_file(demo_model_dir, tmp_path_factory):
    """The demo model as an A1111-style single file (original key layout), carrying its
    configs: its shapes are its own, no real family's."""
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(demo_model_dir, safety_checker=None)
    path = tmp_path_factory.mktemp("single-file") / "demo-v1.safetensors"
    return write_original_checkpoint(pipeline, path, carry_config=True)


def test_it_writes_the_original_layout_and_reads_the_family_from_the_keys(demo_single_file):
    from safetensors import safe_open

    with safe_open(str(demo_single_file), framework="pt") as handle:
        keys = set(handle.keys())
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.middle_block.1.proj_in.weight" in keys
    assert "first_stage_model.decoder.up.0.block.0.conv1.weight" in keys
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in keys
    assert not any(key.startswith(("down_blocks", "unet.")) for key in keys)
    info = inspect_checkpoint(demo_single_file)
    assert (info.family, info.inpainting, info.own_config) == ("sd15", False, True)


def test_it_generates_from_the_single_file_what_the_folder_makes(demo_model_dir,
                                                                 demo_single_file, no_network):
    cache = PipelineCache()
    from_folder = cache.generate(str(demo_model_dir), QUICK)
    from_file = cache.generate(str(demo_single_file), QUICK)
    assert cache.load_count == 2
    assert from_file[0].tobytes() == from_folder[0].tobytes()


@pytest.mark.django_db
def test_it_registers_a_single_file_by_path_and_by_upload(api_as, admin_user,
                                                          demo_single_file, no_network):
    sha256 = hashlib.sha256(demo_single_file.read_bytes()).hexdigest()
    client = api_as(admin_user)
    by_path = client.post("/api/models/", {"name": "demo-v1", "kind": "base",
                                           "source": str(demo_single_file)}, format="json")
    assert by_path.status_code == 201, by_path.content
    assert (by_path.json()["family"], by_path.json()["sha256"]) == ("sd15", sha256)
    assert ModelVersion.objects.get(pk=by_path.json()["id"]).short_hash == sha256[:10]

    by_upload = client.post("/api/models/", {
        "name": "demo-v1-uploaded", "kind": "base", "family": "sdxl",  # the keys decide
        "file": SimpleUploadedFile("demo-v1.safetensors", demo_single_file.read_bytes())},
        format="multipart")
    assert by_upload.status_code == 201, by_upload.content
    uploaded = ModelVersion.objects.get(pk=by_upload.json()["id"])
    assert (uploaded.family, uploaded.sha256, uploaded.kind) == ("sd15", sha256, "base")
    assert uploaded.file.name == f"models/{sha256}.safetensors"

    # Generated from, as the worker does: the uploaded copy fetched into the model cache.
    images = PipelineCache().generate(uploaded.engine_source(), QUICK)
    text = images.parameters_text(0, model_name=uploaded.name, model_sha256=uploaded.sha256)
    assert f"Model hash: {sha256[:10]}, Model: demo-v1-uploaded" in text


def fake_checkpoint(path, keys):
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(path))
    return path


SD1 = {"model.diffusion_model.input_blocks.0.0.weight": (8, 4, 3, 3),
       "first_stage_model.encoder.conv_in.weight": (8, 3, 3, 3),
       "cond_stage_model.transformer.text_model.final_layer_norm.weight": (8,)}


@pytest.mark.django_db
@pytest.mark.parametrize("keys, words", [
    ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8)}, "is a LoRA"),
    ({"encoder.conv_in.weight": (8, 3, 3, 3), "first_stage_model.decoder.conv_out.weight":
      (3, 8, 3, 3)}, "is a VAE alone"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (8, 4, 3, 3),
      "conditioner.embedders.0.model.text_projection": (8, 8)}, "an SDXL refiner"),
    ({"model.diffusion_model.joint_blocks.0.x_block.mlp.fc1.weight": (8, 8)},
     "Stable Diffusion 3"),
    ({"double_blocks.0.img_attn.norm.key_norm.scale": (8,)}, "a Flux model"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (8, 4, 3, 3)}, "no text encoder"),
    ({"some.tensor": (2,)}, "has no UNet"),
])
def test_it_refuses_a_file_of_another_kind_naming_it(api_as, admin_user, tmp_path, keys,
                                                     words, media_root):
    path = fake_checkpoint(tmp_path / "thing.safetensors", keys)
    client = api_as(admin_user)
    for request in ({"name": "x", "kind": "base", "source": str(path)},
                    {"name": "x", "kind": "base",
                     "file": SimpleUploadedFile("thing.safetensors", path.read_bytes())}):
        response = client.post("/api/models/", request,
                               format="multipart" if "file" in request else "json")
        assert response.status_code == 400, response.content
        assert words in json.dumps(response.json()), response.json()
    assert not ModelVersion.objects.exists()
    assert not list((media_root / "models").glob("*")) if (media_root / "models").exists() \
        else True


@pytest.mark.django_db
def test_it_notes_an_inpainting_checkpoint(api_as, admin_user, tmp_path):
    path = fake_checkpoint(tmp_path / "inpaint.safetensors", {
        **SD1, "model.diffusion_model.input_blocks.0.0.weight": (8, 9, 3, 3)})
    response = api_as(admin_user).post("/api/models/", {"name": "inpaint", "kind": "base",
                                                        "source": str(path)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["family"] == "sd15"
    assert "Stable Diffusion 1.x inpainting checkpoint" in response.json()["description"]


# The parameter counts of the real models' components (their published sizes): the
# shipped configs build exactly those shapes.
PARAMETERS = {
    ("sd15", "unet"): 859_520_964, ("sd15", "vae"): 83_653_863,
    ("sd15", "text_encoder"): 123_060_480,
    ("sd2", "unet"): 865_910_724, ("sd2", "text_encoder"): 340_387_840,
    ("sdxl", "unet"): 2_567_463_684, ("sdxl", "vae"): 83_653_863,
    ("sdxl", "text_encoder"): 123_060_480, ("sdxl", "text_encoder_2"): 694_659_840,
}


@pytest.mark.parametrize("family, component", list(PARAMETERS))
def test_the_shipped_configs_have_the_real_models_shapes(family, component):
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = json.loads((CONFIGS / family / component / "config.json").read_text())
    with init_empty_weights():
        if component == "unet":
            model = UNet2DConditionModel.from_config(config)
        elif component == "vae":
            model = AutoencoderKL.from_config(config)
        else:
            cls = CLIPTextModelWithProjection if component == "text_encoder_2" else CLIPTextModel
            model = cls(CLIPTextConfig(**config))
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[family, component]


# CLIP's token ids of these prompts, from open_clip's SimpleTokenizer (the reference
# implementation of OpenAI's CLIP tokenizer), written down here.
CLIP_IDS = [
    ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]),
    ("A Lighthouse at DUSK, oil painting, (masterpiece:1.2), 8k!!",
     [49406, 320, 13717, 536, 19708, 267, 2870, 3086, 267, 263, 12066, 281, 272, 269, 273,
      2361, 279, 330, 748, 49407]),
    ("café naïve résumé — “quotes” & <html> tags",
     [49406, 15304, 1097, 35689, 563, 29106, 7054, 4166, 2005, 257, 5808, 257, 261, 283,
      18231, 285, 11606, 49407]),
    ("don't you'll we've 1234567 x-ray_vision",
     [49406, 847, 713, 592, 1342, 649, 1200, 272, 273, 274, 275, 276, 277, 278, 343, 268,
      3077, 318, 2515, 49407]),
    ("emoji 🐱🚀 and 日本語のテキスト",
     [49406, 16327, 35710, 13542, 537, 39121, 44353, 34002, 252, 21575, 2429, 228, 47121,
      32421, 486, 49407]),
    ("  multiple   spaces\tand\nnewlines  ", [49406, 6470, 9006, 537, 1218, 3418, 49407]),
    ("&amp; &lt;b&gt; double escaped &amp;amp;",
     [49406, 261, 283, 321, 285, 3200, 18707, 261, 49407]),
]


@pytest.fixture(scope="module")
def clip_tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path_factory.mktemp("clip")))


@pytest.mark.parametrize("prompt, ids", CLIP_IDS)
def test_it_tokenizes_as_clip_does(clip_tokenizer, prompt, ids):
    assert clip_tokenizer(clean_prompt(prompt))["input_ids"] == ids


def test_it_truncates_and_pads_as_the_pipelines_ask(clip_tokenizer, tmp_path):
    from transformers import CLIPTokenizer

    long = ", ".join(["a very detailed castle on a hill"] * 12)
    ids = clip_tokenizer(clean_prompt(long), truncation=True, max_length=77)["input_ids"]
    assert len(ids) == 77 and ids[:3] == [49406, 320, 1070] and ids[-3:] == [1070, 12609, 49407]
    padded = clip_tokenizer("a cat", padding="max_length", max_length=77)["input_ids"]
    assert padded[:4] == [49406, 320, 2368, 49407] and set(padded[4:]) == {49407}
    open_clip = CLIPTokenizer.from_pretrained(
        write_clip_tokenizer(tmp_path, pad_token="!"))  # noqa: S106  a token, no password
    padded = open_clip("a cat", padding="max_length", max_length=77)["input_ids"]
    assert set(padded[4:]) == {0}  # OpenCLIP's padding (SD 2.x, SDXL's second encoder)
