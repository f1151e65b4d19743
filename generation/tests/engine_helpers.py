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


def red_circle(size=64):
    """A red disc on white: the picture the image to image tests start from."""
    from PIL import Image

    y, x = np.mgrid[:size, :size]
    inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2
    picture = np.full((size, size, 3), 255, dtype=np.uint8)
    picture[inside] = (220, 20, 20)
    return Image.fromarray(picture)


def box_mask(size=64, box=(8, 8, 32, 32)):
    """A mask (L), white inside `box` (left, top, right, bottom), black elsewhere."""
    from PIL import Image

    mask = np.zeros((size, size), dtype=np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return Image.fromarray(mask, mode="L")


def png_of(picture):
    """A PIL picture's PNG bytes."""
    import io

    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def finished_job(job_id, timeout=180):
    """The job `job_id` once a worker ended it (succeeded or failed)."""
    from generation.models import Job, Status
    from imagineer.testing import wait_for

    return wait_for(lambda: (job := Job.objects.get(pk=job_id)).status in (
        Status.SUCCEEDED, Status.FAILED) and job, timeout=timeout,
        message=f"job {job_id} to end")


def stored_picture(image):
    """An Image's stored PNG, decoded (its text chunks in `.text`)."""
    import io

    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    with default_storage.open(image.file.name, "rb") as handle:
        picture = PILImage.open(io.BytesIO(handle.read()))
        picture.load()
    return picture
