"""The upscaler models of the engine (generation/engine/upscalers.py), without Django.

Tiny random RRDBNet and SRVGGNetCompact networks are written in each key layout (ESRGAN's
old arch, its new arch, BasicSR's) as .pth and .safetensors files; each must be read as
the architecture, scale and sizes it was built with, and its pixels must equal a
reference forward pass written here from the papers' description (functional torch,
no module of ours), so a wrong key mapping or a wrong block shows."""

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch.nn import functional

from generation.engine import upscalers
from generation.engine.pipelines import PipelineCache
from generation.engine.upscalers import (
    COMPACT,
    RRDB,
    NotAnUpscaler,
    UpscalerInfo,
    inspect_upscaler,
    load_upscaler,
    random_state_dict,
)

from .engine_helpers import pixels, red_circle

X4 = UpscalerInfo(RRDB, scale=4, in_channels=3, out_channels=3, features=8, blocks=2, grow=4)
X2 = UpscalerInfo(RRDB, scale=2, in_channels=3, out_channels=3, features=8, blocks=1, grow=4,
                  unshuffle=2)  # Real-ESRGAN's x2plus: the picture is pixel-unshuffled
X1 = UpscalerInfo(RRDB, scale=1, in_channels=3, out_channels=3, features=8, blocks=1, grow=4,
                  unshuffle=4)
COMPACT_X4 = UpscalerInfo(COMPACT, scale=4, in_channels=3, out_channels=3, features=8,
                          blocks=3)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def write(state, path):
    if path.suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    return path


# A reference forward pass, from the BasicSR / Real-ESRGAN definitions, on the BasicSR keys.

def conv(state, name, x):
    return functional.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)


def lrelu(x):
    return functional.leaky_relu(x, 0.2)


def reference_rrdb(state, info, x):
    if info.unshuffle > 1:
        x = functional.pixel_unshuffle(x, info.unshuffle)
    first = conv(state, "conv_first", x)
    trunk = first
    for block in range(info.blocks):
        inner = trunk
        for dense in (1, 2, 3):
            found = [inner]
            for index in range(1, 5):
                found.append(lrelu(conv(state, f"body.{block}.rdb{dense}.conv{index}",
                                        torch.cat(found, 1))))
            inner = conv(state, f"body.{block}.rdb{dense}.conv5", torch.cat(found, 1)) * 0.2 \
                + inner
        trunk = inner * 0.2 + trunk
    feature = first + conv(state, "conv_body", trunk)
    up = 1
    while f"conv_up{up}.weight" in state:
        feature = lrelu(conv(state, f"conv_up{up}",
                             functional.interpolate(feature, scale_factor=2, mode="nearest")))
        up += 1
    return conv(state, "conv_last", lrelu(conv(state, "conv_hr", feature)))


def reference_compact(state, info, x):
    out = x
    last = 2 * (info.blocks + 1)
    for index in range(0, last, 2):
        out = conv(state, f"body.{index}", out)
        out = functional.prelu(out, state[f"body.{index + 1}.weight"])
    out = functional.pixel_shuffle(conv(state, f"body.{last}", out), info.scale)
    return out + functional.interpolate(x, scale_factor=info.scale, mode="nearest")


def reference_picture(info, picture):
    """The picture upscaled once by the reference pass on the BasicSR state dict."""
    import numpy as np

    state = random_state_dict(info, "basicsr")
    tensor = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0)
    tensor = tensor.permute(2, 0, 1).unsqueeze(0)
    with torch.inference_mode():
        out = (reference_rrdb if info.arch == RRDB else reference_compact)(state, info, tensor)
    array = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(array, mode="RGB")


CASES = [(X4, "old"), (X4, "new"), (X4, "basicsr"), (X2, "basicsr"), (X1, "basicsr"),
         (COMPACT_X4, "basicsr")]


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("info, layout", CASES)
def test_each_layout_is_read_and_runs_as_the_reference(tmp_path, info, layout, suffix):
    path = write(random_state_dict(info, layout), tmp_path / f"model{suffix}")
    assert inspect_upscaler(path) == info
    picture = red_circle(16)
    model = load_upscaler(path)
    once = model.run(picture)
    assert once.size == (16 * info.scale, 16 * info.scale)
    expected = reference_picture(info, picture)
    assert pixels(once).std() > 0  # a picture, not a flat field
    assert (pixels(once) == pixels(expected)).all()


def test_a_real_esrgan_pth_wrapped_in_params_ema_is_read(tmp_path):
    state = random_state_dict(X4, "basicsr")
    path = write({"params_ema": state}, tmp_path / "RealESRGAN_x4plus.pth")
    assert inspect_upscaler(path) == X4


def test_an_odd_sized_picture_goes_through_a_pixel_unshuffling_model(tmp_path):
    path = write(random_state_dict(X2, "basicsr"), tmp_path / "x2.safetensors")
    picture = red_circle(16).crop((0, 0, 15, 13))
    assert load_upscaler(path).run(picture).size == (30, 26)


def test_it_reaches_the_size_asked_by_passes_then_lanczos(tmp_path):
    path = write(random_state_dict(X2, "basicsr"), tmp_path / "x2.safetensors")
    model = load_upscaler(path)
    picture = red_circle(16)
    twice = model(picture, (64, 64))  # two passes of 2x
    assert twice.size == (64, 64)
    assert (pixels(twice) == pixels(model.run(model.run(picture)))).all()
    assert model(picture, (40, 24)).size == (40, 24)  # one pass, then resampled down
    assert model(picture, (16, 16)).size == (16, 16)  # no pass: already that large


def test_the_random_network_is_seeded(tmp_path):
    first = random_state_dict(X4, "old", seed=1)
    assert all(torch.equal(first[key], value)
               for key, value in random_state_dict(X4, "old", seed=1).items())


@pytest.mark.parametrize("name, content, words", [
    ("notes.pth", b"these are not weights", "could not be read"),
    ("empty.safetensors", b"", "could not be read"),
])
def test_a_file_that_is_no_weights_is_refused_by_name(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotAnUpscaler) as refused:
        inspect_upscaler(path)
    assert name in str(refused.value) and words in str(refused.value)
    assert "ESRGAN" in str(refused.value)  # what was expected


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": Image.new("RGB", (1, 1))}, path)  # no tensor: a pickled object
    with pytest.raises(NotAnUpscaler, match="evil.pth"):
        inspect_upscaler(path)


def test_other_weights_are_refused_saying_what_they_are(tmp_path, demo_loras):
    with pytest.raises(NotAnUpscaler, match="is a LoRA, not an upscaler"):
        inspect_upscaler(demo_loras[0])
    path = write({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(NotAnUpscaler, match="other.safetensors is not an upscaler"):
        inspect_upscaler(path)


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    state = random_state_dict(X4, "basicsr")
    state["body.0.rdb1.conv2.weight"] = torch.zeros(4, 5, 3, 3)
    path = write(state, tmp_path / "broken.safetensors")
    with pytest.raises(NotAnUpscaler, match="broken.safetensors"):
        upscalers.load_module(path)
    del state["conv_last.weight"]
    path = write(state, tmp_path / "cut.safetensors")
    with pytest.raises(NotAnUpscaler, match="cut.safetensors.*incomplete"):
        inspect_upscaler(path)


def test_the_cache_keeps_one_upscaler_and_releases_it_with_the_pipeline(tmp_path):
    first = write(random_state_dict(X2, "basicsr"), tmp_path / "a.safetensors")
    second = write(random_state_dict(COMPACT_X4, "basicsr"), tmp_path / "b.pth")
    cache = PipelineCache()
    model = cache.upscaler_model(first)
    assert cache.upscaler_model(first) is model and cache.upscaler_loads == 1
    assert cache.upscaler_model(second).info == COMPACT_X4
    assert (cache.loaded_upscaler, cache.upscaler_loads) == (str(second), 2)
    cache.release()
    assert cache.loaded_upscaler is None
