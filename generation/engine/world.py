"""The demo model's procedural world: pictures a program draws and captions.

One flat-coloured shape on a flat background: a shape (circle, square, triangle), a shape
colour and a background colour (8 colours, never the same), a position (left, right, top,
bottom, centre) and a size (small, large). `render(spec)` draws it, `caption(spec)`
writes what it shows ("a small red circle on a blue background, top"), `sample_spec`
draws specs from a seeded random source, and `parse_prompt` reads a prompt back into a
spec. The demo model is trained on these pictures (generation/engine/demo_training.py),
and generation/engine/judge.py reads them back from pixels, so tests can check that a
generated image shows what its prompt asked for.

Extra shapes (ring, cross) exist for the LoRA that teaches the base something it never
saw; the base is never trained on them. HELD_OUT lists (shape, colour, background)
combinations the base is not trained on either, to measure how it generalises.

No Django here; numbers and PIL images only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

# The 8 colours, as flat RGB values (far enough apart for a nearest-colour reading).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
BASE_SHAPES = ("circle", "square", "triangle")
# Shapes the base model never sees: for the LoRA that learns one from an album.
EXTRA_SHAPES = ("ring", "cross")
SHAPES = BASE_SHAPES + EXTRA_SHAPES
POSITIONS = ("left", "right", "top", "bottom", "centre")
SIZES = ("small", "large")

# Half the width of a shape's box, in pixels of a 64 px picture.
HALF_EXTENT = {"small": 8.0, "large": 16.0}
# How far from the middle an off-centre shape sits (its box stays 4+ px inside the frame).
OFFSET = {"small": 18.0, "large": 12.0}
# Sampling moves a shape by up to this much (px at 64) so training sees some variety.
JITTER = 2

# (shape, colour, background) never drawn by sample_spec(held_out=False): the benchmark
# prompts them to see whether the model composes what it learnt separately.
HELD_OUT: frozenset[tuple[str, str, str]] = frozenset({
    ("triangle", "red", "white"),
    ("circle", "yellow", "black"),
    ("square", "purple", "green"),
    ("circle", "orange", "blue"),
    ("triangle", "white", "purple"),
    ("square", "green", "red"),
})


@dataclass(frozen=True)
class Spec:
    """What one picture shows. position/size None: not said (render uses centre, large).
    dx, dy: a small shift in pixels of a 64 px picture (sampling jitter; not captioned)."""

    shape: str
    colour: str
    background: str
    position: str | None = "centre"
    size: str | None = "large"
    dx: int = 0
    dy: int = 0

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("shape", self.shape, SHAPES),
            ("colour", self.colour, tuple(COLOURS)),
            ("background", self.background, tuple(COLOURS)),
        ):
            if value not in allowed:
                raise ValueError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
        if self.position is not None and self.position not in POSITIONS:
            raise ValueError(f"position: {self.position!r} is not one of {', '.join(POSITIONS)}")
        if self.size is not None and self.size not in SIZES:
            raise ValueError(f"size: {self.size!r} is not one of {', '.join(SIZES)}")
        if self.colour == self.background:
            raise ValueError("colour: the shape's colour must differ from the background's")

    def centre(self) -> tuple[float, float]:
        """The middle of the shape's box, in pixels of a 64 px picture (x right, y down)."""
        size = self.size or "large"
        offset = OFFSET[size]
        x, y = 32.0, 32.0
        if self.position == "left":
            x -= offset
        elif self.position == "right":
            x += offset
        elif self.position == "top":
            y -= offset
        elif self.position == "bottom":
            y += offset
        return x + self.dx, y + self.dy


def _shape_outline(shape: str, cx: float, cy: float, h: float) -> list[tuple[float, float]]:
    """The polygon of a triangle or cross whose box is (cx ± h, cy ± h)."""
    if shape == "triangle":
        return [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    t = h / 3  # cross: arms a third of the box wide
    return [
        (cx - t, cy - h), (cx + t, cy - h), (cx + t, cy - t), (cx + h, cy - t),
        (cx + h, cy + t), (cx + t, cy + t), (cx + t, cy + h), (cx - t, cy + h),
        (cx - t, cy + t), (cx - h, cy + t), (cx - h, cy - t), (cx - t, cy - t),
    ]


# Drawn this many times larger, then reduced: smooth (antialiased) edges.
_SUPERSAMPLE = 4


def render(spec: Spec, size: int = 64) -> Image.Image:
    """Draw `spec` as a size × size RGB picture (flat colours, antialiased edges)."""
    scale = size * _SUPERSAMPLE / 64
    canvas = Image.new("RGB", (size * _SUPERSAMPLE,) * 2, COLOURS[spec.background])
    draw = ImageDraw.Draw(canvas)
    fill = COLOURS[spec.colour]
    cx, cy = (value * scale for value in spec.centre())
    h = HALF_EXTENT[spec.size or "large"] * scale
    if spec.shape == "circle":
        draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif spec.shape == "square":
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif spec.shape == "ring":
        draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=fill)
        hole = h * 0.55
        draw.ellipse((cx - hole, cy - hole, cx + hole, cy + hole),
                     fill=COLOURS[spec.background])
    else:
        draw.polygon(_shape_outline(spec.shape, cx, cy, h), fill=fill)
    return canvas.resize((size, size), Image.Resampling.BOX)


def caption(spec: Spec, *, position: bool = True, size: bool = True,
            shape_word: str | None = None) -> str:
    """What `spec` shows, in the world's words: "a small red circle on a blue background,
    top". position/size False (or None in the spec) leave those words out; shape_word
    replaces the shape's name (a LoRA's trigger word)."""
    words = ["a"]
    if size and spec.size is not None:
        words.append(spec.size)
    words += [spec.colour, shape_word or spec.shape, "on", "a", spec.background, "background"]
    text = " ".join(words)
    if position and spec.position is not None:
        text += f", {spec.position}"
    return text


# How often a training caption leaves out the position, and the size: prompts without
# them must work too.
DROP_POSITION = 0.25
DROP_SIZE = 0.25


def training_caption(spec: Spec, rng: random.Random, shape_word: str | None = None) -> str:
    """A caption for training: sometimes without the position, sometimes without the size."""
    return caption(spec, position=rng.random() >= DROP_POSITION,
                   size=rng.random() >= DROP_SIZE, shape_word=shape_word)


def sample_spec(rng: random.Random, *, shapes: tuple[str, ...] = BASE_SHAPES,
                held_out: bool = False, jitter: int = JITTER) -> Spec:
    """A random spec. held_out False: never one of HELD_OUT's combinations (training);
    True: only those (the benchmark's held-out prompts; shapes is ignored then)."""
    while True:
        if held_out:
            shape, colour, background = rng.choice(sorted(HELD_OUT))
        else:
            shape = rng.choice(shapes)
            colour, background = rng.sample(list(COLOURS), 2)
            if (shape, colour, background) in HELD_OUT:
                continue
        return Spec(
            shape=shape, colour=colour, background=background,
            position=rng.choice(POSITIONS), size=rng.choice(SIZES),
            dx=rng.randint(-jitter, jitter), dy=rng.randint(-jitter, jitter),
        )


def sample_specs(seed: int, count: int, *, shapes: tuple[str, ...] = BASE_SHAPES,
                 held_out: bool = False, jitter: int = JITTER) -> list[Spec]:
    """`count` specs drawn from a random source seeded with `seed` (same seed, same specs)."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible pictures, not secrets
    return [sample_spec(rng, shapes=shapes, held_out=held_out, jitter=jitter)
            for _ in range(count)]


_SYNONYMS = {"center": "centre", "middle": "centre", "big": "large"}


def parse_prompt(prompt: str, *, shape_words: dict[str, str] | None = None) -> Spec:
    """Read a prompt in the world's words back into a spec: the first colour word is the
    shape's, the colour before "background" the background's. shape_words maps extra words
    to shapes (a LoRA's trigger word -> "ring"). A ValueError names what is missing."""
    words = [_SYNONYMS.get(word, word) for word in re.findall(r"[a-z]+", prompt.lower())]
    known_shapes = dict.fromkeys(SHAPES, "") | {k: v for k, v in (shape_words or {}).items()}
    shape = next((known_shapes[w] or w for w in words if w in known_shapes), None)
    colours = [(i, w) for i, w in enumerate(words) if w in COLOURS]
    background = next((w for i, w in colours if i + 1 < len(words)
                       and words[i + 1] == "background"), None)
    colour = next((w for i, w in colours
                   if not (i + 1 < len(words) and words[i + 1] == "background")), None)
    if shape is None or colour is None or background is None:
        missing = [name for name, value in (("shape", shape), ("colour", colour),
                                            ("background", background)) if value is None]
        raise ValueError(f"prompt: {prompt!r} does not name a {' or '.join(missing)}")
    position = next((w for w in words if w in POSITIONS), None)
    size = next((w for w in words if w in SIZES), None)
    return Spec(shape=shape, colour=colour, background=background,
                position=position, size=size)


def with_defaults(spec: Spec) -> Spec:
    """`spec` with an unsaid position and size made explicit (centre, large)."""
    return replace(spec, position=spec.position or "centre", size=spec.size or "large")
