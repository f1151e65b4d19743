"""The pipeline cache on the tiny demo model: determinism, batching, cancel, failure, idle."""

import pytest

from generation.engine.device import pick_device
from generation.engine.pipelines import SCHEDULERS, Cancelled, PipelineCache, image_seeds
from generation.tests.engine_helpers import SMALL, FakeClock, max_difference, params, same_pixels


@pytest.fixture
def cache():
    return PipelineCache(device=pick_device("cpu"))


def test_it_runs_on_the_cpu_in_fp32_without_a_gpu():
    import torch

    device = pick_device("cpu")
    assert (device.type, device.dtype) == ("cpu", torch.float32)


def test_it_gives_the_same_pixels_for_the_same_seed(cache, demo_model_dir):
    first = cache.generate(demo_model_dir, params(["a red fox"], [7], **SMALL))
    again = cache.generate(demo_model_dir, params(["a red fox"], [7], **SMALL))
    other_seed = cache.generate(demo_model_dir, params(["a red fox"], [8], **SMALL))

    assert len(first) == 1 and first[0].size == (64, 64)
    assert same_pixels(first[0], again[0])
    assert not same_pixels(first[0], other_seed[0])
    assert cache.load_count == 1


@pytest.mark.parametrize("scheduler", [None, "euler_a"])
def test_it_gives_a_prompt_the_same_pixels_alone_or_in_a_batch(cache, demo_model_dir, scheduler):
    prompts, seeds = ["a red fox", "a blue owl", "a green frog"], [11, 22, 33]
    batch = cache.generate(demo_model_dir, params(prompts, seeds, scheduler=scheduler, **SMALL))
    alone = [
        cache.generate(demo_model_dir, params([prompt], [seed], scheduler=scheduler, **SMALL))[0]
        for prompt, seed in zip(prompts, seeds, strict=True)
    ]

    assert len(batch) == 3
    for batched, single in zip(batch, alone, strict=True):
        # Same noise, same prompt: equal up to one level of float rounding, which CPU
        # kernels may do differently for a batch of 3 than for 1.
        assert max_difference(batched, single) <= 1
    assert max_difference(batch[0], batch[1]) > 10


def test_it_gives_each_image_of_a_prompt_the_next_seed(cache, demo_model_dir):
    images = cache.generate(demo_model_dir,
                            params(["a cat", "a dog"], [5, 50], num_images=2, **SMALL))
    second_cat = cache.generate(demo_model_dir, params(["a cat"], [6], **SMALL))[0]
    second_dog = cache.generate(demo_model_dir, params(["a dog"], [51], **SMALL))[0]

    assert image_seeds([5, 50], 2) == [5, 6, 50, 51]
    assert len(images) == 4
    assert max_difference(images[1], second_cat) <= 1
    assert max_difference(images[3], second_dog) <= 1


def test_it_uses_a_negative_prompt(cache, demo_model_dir):
    plain = cache.generate(demo_model_dir, params(["a cat"], [3], **SMALL))[0]
    negative = cache.generate(
        demo_model_dir, params(["a cat"], [3], negative_prompt="blurry", **SMALL))[0]

    assert not same_pixels(plain, negative)


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_it_runs_each_scheduler(cache, demo_model_dir, scheduler):
    steps = []
    images = cache.generate(
        demo_model_dir,
        params(["a lighthouse"], [1], scheduler=scheduler, **SMALL),
        on_step=lambda step, total: steps.append((step, total)),
    )

    assert images[0].size == (64, 64)
    assert [step for step, _ in steps] == list(range(1, len(steps) + 1))
    assert steps[-1][0] == steps[-1][1] >= SMALL["steps"]
    assert cache.sampler_name(scheduler) == SCHEDULERS[scheduler][1]


def test_it_refuses_an_unknown_scheduler(cache, demo_model_dir):
    with pytest.raises(ValueError, match="scheduler: 'k_heun' is not one of pndm"):
        cache.generate(demo_model_dir, params(["a cat"], [1], scheduler="k_heun", **SMALL))


def test_it_needs_the_prompts_of_one_call_to_share_their_shape(cache, demo_model_dir):
    batch = [*params(["a cat"], [1], **SMALL), *params(["a dog"], [2], width=128, height=64,
                                                        steps=2)]
    with pytest.raises(ValueError, match="params: the prompts of one call share width"):
        cache.generate(demo_model_dir, batch)


def test_it_stops_a_cancelled_run_between_steps(cache, demo_model_dir):
    steps = []

    with pytest.raises(Cancelled):
        cache.generate(
            demo_model_dir,
            params(["a cat"], [1], width=64, height=64, steps=6),
            on_step=lambda step, total: steps.append(step),
            should_cancel=lambda: len(steps) >= 2,
        )

    assert steps == [1, 2]
    assert cache.generate(demo_model_dir, params(["a cat"], [1], **SMALL))[0].size == (64, 64)


def test_it_cancels_before_loading_when_already_cancelled(cache, demo_model_dir):
    with pytest.raises(Cancelled):
        cache.generate(demo_model_dir, params(["a cat"], [1], **SMALL), should_cancel=lambda: True)

    assert cache.load_count == 0


def test_it_keeps_working_after_a_failed_call(cache, demo_model_dir, demo_loras, tmp_path):
    before = cache.generate(demo_model_dir, params(["a cat"], [4], **SMALL))[0]
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(demo_loras[0].read_bytes()[:500])

    with pytest.raises(OSError, match="Unable to load weights"):
        cache.generate(demo_model_dir, params(["a cat"], [4], **SMALL),
                       loras=[("bad", corrupt, 1.0)])

    after = cache.generate(demo_model_dir, params(["a cat"], [4], **SMALL))[0]
    assert same_pixels(before, after)
    assert cache.loaded_loras == []
    assert cache.load_count == 1


def test_it_says_when_a_lora_file_is_missing(cache, demo_model_dir, tmp_path):
    missing = tmp_path / "gone.safetensors"

    with pytest.raises(FileNotFoundError, match="LoRA file not found: .*gone.safetensors"):
        cache.generate(demo_model_dir, params(["a cat"], [4], **SMALL),
                       loras=[("gone", missing, 1.0)])


def test_it_releases_a_different_base_before_loading_it(cache, demo_model_dir, tmp_path):
    from generation.engine.demo import build_demo_pipeline

    other_dir = tmp_path / "other"
    build_demo_pipeline(other_dir, seed=1)
    first = cache.generate(demo_model_dir, params(["a cat"], [2], **SMALL))[0]
    other = cache.generate(other_dir, params(["a cat"], [2], **SMALL))[0]

    assert cache.base_source == str(other_dir)
    assert cache.load_count == 2
    assert not same_pixels(first, other)


def test_it_releases_the_pipeline_after_the_idle_time(demo_model_dir):
    clock = FakeClock()
    cache = PipelineCache(device=pick_device("cpu"), clock=clock)
    cache.generate(demo_model_dir, params(["a cat"], [1], **SMALL))

    clock.now += 59
    assert cache.release_if_idle(60) is False
    assert cache.is_loaded

    clock.now += 1
    assert cache.release_if_idle(60) is True
    assert not cache.is_loaded and cache.base_source is None

    cache.generate(demo_model_dir, params(["a cat"], [1], **SMALL))
    assert cache.load_count == 2


def test_it_releases_an_idle_pipeline_from_the_reaper_thread(demo_model_dir):
    import time

    clock = FakeClock()
    cache = PipelineCache(device=pick_device("cpu"), clock=clock)
    cache.pipeline(demo_model_dir)
    cache.start_idle_reaper(30, interval=0.01)

    clock.now += 31
    deadline = time.monotonic() + 10
    while cache.is_loaded and time.monotonic() < deadline:
        time.sleep(0.01)
    cache.stop_idle_reaper()
    assert not cache.is_loaded


def test_it_shares_one_cache_per_process():
    from generation.engine.pipelines import get_cache

    assert get_cache() is get_cache()


def test_it_compiles_the_unet_in_compiled_mode(cache, demo_model_dir, demo_loras):
    """IMAGINEER_COMPILE: the same pictures, LoRAs and all, from a compiled UNet. The
    "eager" backend traces as inductor would but generates no kernels (minutes on a CPU);
    the GPU check (bench/gpu_check.py) measures the real thing."""
    import torch

    compiled = PipelineCache(device=pick_device("cpu"), compile="default",
                             compile_backend="eager")
    # At weight 0.3: the random LoRA at full weight drives the trained demo model where
    # rounding differences grow (up to 21 levels), which says nothing of compiling.
    lora = [("a", demo_loras[0], 0.3)]
    images = []
    for loras in ((), lora, ()):
        request = params(["a cat"], [4], **SMALL)
        eager_image = cache.generate(demo_model_dir, request, loras=loras)
        images.append(compiled.generate(demo_model_dir, request, loras=loras)[0])
        # channels_last convolutions round differently: a few levels at most.
        assert max_difference(eager_image[0], images[-1]) <= 3
    assert max_difference(images[0], images[1]) > 10
    assert same_pixels(images[0], images[2])

    unet = compiled.pipeline(demo_model_dir).unet
    assert unet._compiled_call_impl is not None
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert cache.pipeline(demo_model_dir).unet._compiled_call_impl is None
    compiled.release()


@pytest.mark.parametrize("value, mode", [
    ("", None), ("0", None), ("off", None), ("1", "default"), ("true", "default"),
    ("reduce-overhead", "reduce-overhead"), ("Max-Autotune", "max-autotune"),
])
def test_it_reads_the_compile_setting(value, mode):
    from generation.engine.device import compile_mode

    assert compile_mode(value) == mode


def test_it_refuses_an_unknown_compile_mode():
    from generation.engine.device import compile_mode

    with pytest.raises(ValueError, match="IMAGINEER_COMPILE must be 0, 1 or one of default"):
        compile_mode("fast")
