"""The judge: reads what a picture of the demo world shows, from its pixels alone.

Tests and the benchmark (bench/demo_judge.py) use it to check meaning: that "a red
circle on a white background" came out as a red, round thing on white, not as noise or as
some other prompt's picture. It knows the world's rules (generation/engine/world.py) and
nothing about the model:

- each pixel takes the nearest of the 8 colours; the background is the colour most of the
  picture's frame has, the shape's the commonest other colour;
- the shape is the largest connected patch of pixels nearer the shape's colour than the
  background's; its box gives the size (wider than 24 px of 64: large) and the position
  (the box's middle more than 6 px from the picture's: the farther axis says which side);
- its outline gives the shape: an empty middle is a ring, mass in the lower half a
  triangle, a full box a square, a thin fill a cross, the rest a circle.

`colour_counts` reads the colours of a part of a picture alone (the image to image tests
ask what an inpainted box shows).

No Django here; a PIL image in, a Reading out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from .world import COLOURS, Spec

_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in _NAMES], dtype=np.float32)

# The frame whose commonest colour is the background (shapes stay 2+ px inside it).
FRAME = 2
# Fewer pixels of the shape's colour than this: no shape at all.
MIN_SHAPE_PIXELS = 24
# The box's middle farther than this (px of 64) from the picture's: off-centre.
CENTRE_TOLERANCE = 6.0
# A box wider or taller than this (px of 64): large.
LARGE_ABOVE = 24


@dataclass(frozen=True)
class Reading:
    """What the judge sees; None where there is nothing to read (no shape found)."""

    background: str
    colour: str | None
    shape: str | None
    position: str | None
    size: str | None

    def agrees(self, spec: Spec) -> dict[str, bool]:
        """Per quality the spec names (position/size only when it says them): does this
        reading show it?"""
        wanted = {"background": spec.background, "colour": spec.colour, "shape": spec.shape,
                  "position": spec.position, "size": spec.size}
        seen = asdict(self)
        return {key: seen[key] == value for key, value in wanted.items() if value is not None}


def _labels(pixels: np.ndarray) -> np.ndarray:
    """The index of the nearest palette colour of each pixel (H × W)."""
    distances = ((pixels[:, :, None, :] - _PALETTE[None, None, :, :]) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1)


def colour_counts(image: Image.Image, region: np.ndarray | None = None) -> dict[str, int]:
    """How many pixels of `image` (at its own size) read as each of the world's colours
    (the nearest one), within `region` (a boolean H × W array) when given; colours with
    no pixel are left out."""
    labels = _labels(np.asarray(image.convert("RGB"), dtype=np.float32))
    if region is not None:
        labels = labels[region]
    counts = np.bincount(labels.ravel(), minlength=len(_NAMES))
    return {_NAMES[index]: int(count) for index, count in enumerate(counts) if count}


def _largest_patch(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    patches, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, patches, index=range(1, count + 1))
    return patches == (int(np.argmax(sizes)) + 1)


def _shape(patch: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> str:
    box = patch[y0:y1 + 1, x0:x1 + 1]
    height, width = box.shape
    fill = float(box.mean())
    top = float(box[: height // 2].sum()) / max(float(box.sum()), 1.0)
    # The middle of the box: a disc of 0.3 × the half width.
    ys, xs = np.mgrid[0:height, 0:width]
    radius = 0.3 * max(width, height) / 2
    middle = (xs - (width - 1) / 2) ** 2 + (ys - (height - 1) / 2) ** 2 <= radius ** 2
    middle_fill = float(box[middle].mean()) if middle.any() else 1.0
    if middle_fill < 0.35:
        return "ring"
    if top < 0.38:
        return "triangle"
    if fill > 0.9:
        return "square"
    if fill < 0.67:
        return "cross"
    return "circle"


def _position(x0: int, x1: int, y0: int, y1: int, side: int) -> str:
    scale = 64 / side
    dx = ((x0 + x1) / 2 - (side - 1) / 2) * scale
    dy = ((y0 + y1) / 2 - (side - 1) / 2) * scale
    if max(abs(dx), abs(dy)) <= CENTRE_TOLERANCE:
        return "centre"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def judge(image: Image.Image) -> Reading:
    """Read the background colour, shape colour, shape, position and size of a picture of
    the world (any square size; it is read at 64 px)."""
    picture = image.convert("RGB")
    if picture.size != (64, 64):
        picture = picture.resize((64, 64), Image.Resampling.BOX)
    pixels = np.asarray(picture, dtype=np.float32)
    labels = _labels(pixels)
    frame = np.ones(labels.shape, dtype=bool)
    frame[FRAME:-FRAME, FRAME:-FRAME] = False
    background = int(np.bincount(labels[frame], minlength=len(_NAMES)).argmax())
    counts = np.bincount(labels.ravel(), minlength=len(_NAMES))
    counts[background] = 0
    colour = int(counts.argmax())
    if counts[colour] < MIN_SHAPE_PIXELS:
        return Reading(_NAMES[background], None, None, None, None)
    near_shape = ((pixels - _PALETTE[colour]) ** 2).sum(-1) < ((pixels - _PALETTE[background])
                                                                ** 2).sum(-1)
    patch = _largest_patch(near_shape)
    ys, xs = np.nonzero(patch)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    extent = max(x1 - x0, y1 - y0) + 1
    return Reading(
        background=_NAMES[background],
        colour=_NAMES[colour],
        shape=_shape(patch, x0, x1, y0, y1),
        position=_position(x0, x1, y0, y1, 64),
        size="large" if extent > LARGE_ABOVE else "small",
    )
