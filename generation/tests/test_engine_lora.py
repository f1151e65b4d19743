"""LoRAs: hot-swap as named adapters, LRU eviction, and checking files before use."""

import pytest

from generation.engine.device import pick_device
from generation.engine.lora import (
    InvalidLora,
    check_lora_family,
    inspect_lora,
    lora_sha256,
    make_random_lora,
)
from generation.engine.pipelines import PipelineCache, adapter_name
from generation.tests.engine_helpers import SMALL, max_difference, params, same_pixels


@pytest.fixture
def cache():
    return PipelineCache(max_loras=2, device=pick_device("cpu"))


def test_it_hot_swaps_loras_without_reloading_the_base(cache, demo_model_dir, demo_loras):
    def run(loras=()):
        return cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL), loras=loras)[0]

    base = run()
    first = run([(1, demo_loras[0], 1.0)])
    second = run([(2, demo_loras[1], 1.0)])
    base_again = run()
    first_again = run([(1, demo_loras[0], 1.0)])

    assert max_difference(first, base) > 10
    assert max_difference(second, base) > 10
    assert max_difference(first, second) > 10
    assert same_pixels(base_again, base)
    assert same_pixels(first_again, first)
    assert cache.load_count == 1
    assert cache.loaded_loras == ["lora_2", "lora_1"]


def test_it_weighs_and_combines_loras(cache, demo_model_dir, demo_loras):
    def run(loras):
        return cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL), loras=loras)[0]

    full = run([(1, demo_loras[0], 1.0)])
    half = run([(1, demo_loras[0], 0.5)])
    zero = run([(1, demo_loras[0], 0.0)])
    both = run([(1, demo_loras[0], 1.0), (2, demo_loras[1], 1.0)])
    base = run([])

    assert max_difference(full, half) > 0
    assert same_pixels(zero, base)
    assert max_difference(both, full) > 0


def test_it_evicts_the_least_recently_used_lora(cache, demo_model_dir, demo_loras):
    pipeline = cache.pipeline(demo_model_dir)
    first, second, third = [(n, path, 1.0) for n, path in enumerate(demo_loras, start=1)]
    cache.use_loras(pipeline, [first])
    cache.use_loras(pipeline, [second])
    cache.use_loras(pipeline, [first])  # lora_1 is now the most recently used

    cache.use_loras(pipeline, [third])

    assert cache.loaded_loras == ["lora_1", "lora_3"]
    assert sorted(pipeline.get_list_adapters()["unet"]) == ["lora_1", "lora_3"]


def test_it_gives_the_same_pixels_after_reloading_an_evicted_lora(
    cache, demo_model_dir, demo_loras
):
    def run(loras):
        return cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL), loras=loras)[0]

    before = run([(2, demo_loras[1], 1.0)])
    run([(1, demo_loras[0], 1.0)])
    run([(3, demo_loras[2], 1.0)])  # evicts lora_2
    assert "lora_2" not in cache.loaded_loras

    assert same_pixels(run([(2, demo_loras[1], 1.0)]), before)


def test_it_refuses_more_loras_than_it_may_hold(cache, demo_model_dir, demo_loras):
    loras = [(n, path, 1.0) for n, path in enumerate(demo_loras)]

    with pytest.raises(ValueError, match="loras: at most 2 at once, got 3"):
        cache.generate(demo_model_dir, params(["a cat"], [1], **SMALL), loras=loras)


def test_it_names_adapters_after_the_key():
    assert adapter_name(42) == "lora_42"
    assert adapter_name("my-style.v2") == "lora_my_style_v2"


def test_it_reads_a_lora_made_for_the_demo_model(demo_model_dir, demo_loras):
    info = inspect_lora(demo_loras[0])

    assert info.cross_attention_dim == 64
    assert info.family is None
    assert info.rank == 4
    assert info.tensors > 0
    assert check_lora_family(demo_loras[0], "sd15", base_dir=demo_model_dir) == info


def test_it_makes_the_same_lora_from_the_same_seed(demo_model_dir, demo_loras, tmp_path):
    again = make_random_lora(demo_model_dir, tmp_path / "again.safetensors", seed=1)

    assert lora_sha256(again) == lora_sha256(demo_loras[0])
    assert lora_sha256(demo_loras[0]) != lora_sha256(demo_loras[1])
    assert [p.name for p in tmp_path.iterdir()] == ["again.safetensors"]


def test_it_refuses_a_text_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are not weights")

    with pytest.raises(InvalidLora, match="notes.safetensors is not a readable safetensors"):
        inspect_lora(path)


def test_it_refuses_a_truncated_file(demo_loras, tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(demo_loras[0].read_bytes()[:-100])

    with pytest.raises(InvalidLora, match="cut.safetensors is not a readable safetensors"):
        inspect_lora(path)


def write_safetensors(path, shapes, metadata=None):
    """A safetensors file with zero-filled float32 tensors of the given shapes."""
    import torch
    from safetensors.torch import save_file

    save_file({key: torch.zeros(shape) for key, shape in shapes.items()}, path, metadata)
    return path


def test_it_refuses_weights_that_are_not_a_lora(tmp_path):
    path = write_safetensors(tmp_path / "full.safetensors", {"conv_in.weight": (4, 4, 3, 3)})

    with pytest.raises(InvalidLora, match="full.safetensors holds no LoRA weights"):
        inspect_lora(path)


KOHYA_KEY = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
PEFT_KEY = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v"


@pytest.mark.parametrize(
    ("shapes", "family"),
    [
        (
            {f"{KOHYA_KEY}.lora_down.weight": (8, 768), f"{KOHYA_KEY}.lora_up.weight": (320, 8)},
            "sd15",
        ),
        ({f"{PEFT_KEY}.lora_A.weight": (4, 1024), f"{PEFT_KEY}.lora_B.weight": (320, 4)}, "sd2"),
        (
            {f"{KOHYA_KEY}.lora_down.weight": (16, 2048), f"{KOHYA_KEY}.lora_up.weight": (640, 16)},
            "sdxl",
        ),
    ],
)
def test_it_tells_the_family_from_the_cross_attention_width(tmp_path, shapes, family):
    path = write_safetensors(tmp_path / "style.safetensors", shapes)

    assert inspect_lora(path).family == family
    assert check_lora_family(path, family).family == family
    other = "sd15" if family != "sd15" else "sdxl"
    with pytest.raises(InvalidLora, match=f"is a {family} LoRA .width .*, not {other}"):
        check_lora_family(path, other)


def test_it_falls_back_to_the_family_in_the_metadata(tmp_path):
    key = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    shapes = {f"{key}.lora_down.weight": (4, 768), f"{key}.lora_up.weight": (768, 4)}
    path = write_safetensors(
        tmp_path / "te.safetensors", shapes, {"ss_base_model_version": "sdxl_base_v1-0"}
    )

    assert check_lora_family(path, "sdxl").family == "sdxl"
    with pytest.raises(InvalidLora, match="is a sdxl LoRA .metadata., not sd15"):
        check_lora_family(path, "sd15")

    unlabelled = write_safetensors(tmp_path / "plain.safetensors", shapes)
    with pytest.raises(InvalidLora, match="cannot tell its family"):
        check_lora_family(unlabelled, "sd15")


def test_it_accepts_an_odd_width_only_against_a_base_of_that_width(
    demo_model_dir, demo_loras, tmp_path
):
    with pytest.raises(InvalidLora, match="width 64, which is no standard family's"):
        check_lora_family(demo_loras[0], "sd15")

    sd15 = write_safetensors(
        tmp_path / "sd15.safetensors",
        {f"{KOHYA_KEY}.lora_down.weight": (8, 768), f"{KOHYA_KEY}.lora_up.weight": (320, 8)},
    )
    with pytest.raises(InvalidLora, match="width 768; the base model's UNet has .* 64"):
        check_lora_family(sd15, "sd15", base_dir=demo_model_dir)


def test_it_refuses_an_unknown_family(demo_loras):
    with pytest.raises(ValueError, match="family: 'sd3' is not one of sd15, sd2, sdxl"):
        check_lora_family(demo_loras[0], "sd3")


def test_it_leaves_no_adapter_behind_when_a_lora_does_not_fit(cache, demo_model_dir, tmp_path):
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    sd15 = write_safetensors(
        tmp_path / "sd15.safetensors",
        {f"{key}.lora.down.weight": (4, 768), f"{key}.lora.up.weight": (64, 4)},
    )
    base = cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL))[0]

    with pytest.raises(Exception, match="size mismatch"):
        cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL), loras=[(7, sd15, 1.0)])

    assert cache.loaded_loras == []
    assert cache.pipeline(demo_model_dir).get_list_adapters() == {"unet": []}
    assert same_pixels(cache.generate(demo_model_dir, params(["a cat"], [9], **SMALL))[0], base)
