"""Small helpers shared by the engine tests."""

import numpy as np

SMALL = {"width": 64, "height": 64, "steps": 2}


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def max_difference(a, b):
    return int(np.abs(pixels(a) - pixels(b)).max())


def same_pixels(a, b):
    return np.array_equal(pixels(a), pixels(b))


class FakeClock:
    """A clock the test moves by hand, in place of time.monotonic."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def params(prompts, seeds, **fields):
    """One GenerationParams per prompt, each with its seed and the same other fields."""
    from generation.engine.params import GenerationParams

    return [GenerationParams(prompt, seed=seed, **fields)
            for prompt, seed in zip(prompts, seeds, strict=True)]
