"""The demo world (generation/engine/world.py) and its judge (generation/engine/judge.py):
the judge reads every rendered combination back as drawn; captions and prompts round-trip;
sampling is seeded and keeps the held-out combinations out of training."""

import itertools
import random

import pytest
from PIL import ImageFilter

from generation.engine.judge import judge
from generation.engine.world import (
    BASE_SHAPES,
    COLOURS,
    HELD_OUT,
    POSITIONS,
    SHAPES,
    SIZES,
    Spec,
    caption,
    parse_prompt,
    render,
    sample_spec,
    sample_specs,
    training_caption,
)

PLACES = list(itertools.product(POSITIONS, SIZES))


def test_the_judge_reads_every_shape_colour_and_background_as_drawn():
    # Every (shape, colour, background); position and size cycle, so every pair of them
    # meets every shape too.
    wrong = []
    combos = [(s, c, b) for s, c, b in itertools.product(SHAPES, COLOURS, COLOURS) if c != b]
    for index, (shape, colour, background) in enumerate(combos):
        position, size = PLACES[index % len(PLACES)]
        spec = Spec(shape, colour, background, position, size, dx=index % 5 - 2,
                    dy=(index // 5) % 5 - 2)
        reading = judge(render(spec))
        if not all(reading.agrees(spec).values()):
            wrong.append((spec, reading))
    assert len(combos) == 5 * 8 * 7
    assert wrong == []


@pytest.mark.parametrize("shape", SHAPES)
def test_the_judge_reads_every_position_and_size_of_a_shape(shape):
    for (position, size), (colour, background) in itertools.product(
            PLACES, [("red", "white"), ("white", "black"), ("yellow", "orange")]):
        spec = Spec(shape, colour, background, position, size)
        assert judge(render(spec)).agrees(spec) == dict.fromkeys(
            ["background", "colour", "shape", "position", "size"], True), spec


def test_the_judge_reads_larger_and_blurred_pictures():
    spec = Spec("triangle", "purple", "yellow", "right", "large")
    assert all(judge(render(spec, size=128)).agrees(spec).values())
    blurred = render(spec).filter(ImageFilter.GaussianBlur(1.5))
    assert all(judge(blurred).agrees(spec).values())


def test_the_judge_sees_no_shape_on_a_flat_picture():
    from PIL import Image

    reading = judge(Image.new("RGB", (64, 64), COLOURS["blue"]))
    assert (reading.background, reading.colour, reading.shape) == ("blue", None, None)
    assert reading.agrees(Spec("circle", "red", "blue", None, None)) == {
        "background": True, "colour": False, "shape": False}


def test_a_caption_reads_back_as_its_spec():
    spec = Spec("circle", "red", "blue", "top", "small")
    assert caption(spec) == "a small red circle on a blue background, top"
    assert parse_prompt(caption(spec)) == spec
    assert caption(spec, position=False, size=False) == "a red circle on a blue background"
    assert parse_prompt("A red circle on a blue background") == Spec(
        "circle", "red", "blue", None, None)
    # The background may come first; "center" is "centre".
    assert parse_prompt("on a white background, a big black square in the center") == Spec(
        "square", "black", "white", "centre", "large")
    assert parse_prompt("a green zxq on a red background", shape_words={"zxq": "ring"}) \
        == Spec("ring", "green", "red", None, None)


def test_a_prompt_outside_the_world_is_refused_by_name():
    with pytest.raises(ValueError, match="shape"):
        parse_prompt("a red fox on a blue background")
    with pytest.raises(ValueError, match="background"):
        parse_prompt("a red circle")
    with pytest.raises(ValueError, match="colour"):
        Spec("circle", "red", "red")
    with pytest.raises(ValueError, match="position"):
        Spec("circle", "red", "blue", "upside")


def test_sampling_is_seeded_and_leaves_the_held_out_combinations_to_the_benchmark():
    assert sample_specs(3, 50) == sample_specs(3, 50)
    assert sample_specs(3, 50) != sample_specs(4, 50)
    specs = sample_specs(0, 2000)
    triples = {(s.shape, s.colour, s.background) for s in specs}
    assert not triples & HELD_OUT
    assert {s.shape for s in specs} == set(BASE_SHAPES)
    assert {s.position for s in specs} == set(POSITIONS)
    held = sample_specs(0, 50, held_out=True)
    assert {(s.shape, s.colour, s.background) for s in held} <= HELD_OUT


def test_training_captions_sometimes_leave_out_position_and_size():
    rng = random.Random(1)  # noqa: S311 -- a seeded draw, not a secret
    spec = Spec("square", "yellow", "black", "left", "large")
    captions = {training_caption(spec, rng) for _ in range(200)}
    assert captions == {
        "a large yellow square on a black background, left",
        "a yellow square on a black background, left",
        "a large yellow square on a black background",
        "a yellow square on a black background",
    }
    same = random.Random  # noqa: S311 -- seeded draws
    assert sample_spec(same(2)) == sample_spec(same(2))


def test_colour_counts_reads_a_region_of_a_picture():
    import numpy as np

    from generation.engine.judge import colour_counts

    picture = render(Spec("square", "green", "white", "centre", "large"))
    middle = np.zeros((64, 64), dtype=bool)
    middle[24:40, 24:40] = True
    assert colour_counts(picture, middle) == {"green": 256}
    counts = colour_counts(picture)
    assert sum(counts.values()) == 64 * 64 and set(counts) == {"green", "white"}
