"""What an image to image job costs against a text to image job of the same size and steps.

img2img runs about strength x steps of the schedule (the rest is skipped: the source's
latents, noised to the first step run, stand in for them) and adds one VAE encode of the
source; inpainting adds the mask's work; the hires fix runs a second pass at the upscaled
size. Measured through PipelineCache.generate (the worker's entry point) after a warm-up
call of each kind, on the tiny demo model (--sd15: the SD1.5-shaped pipeline too, at 4
steps, once: minutes on a CPU).
"""

import sys

import benchlib


def red_circle(size):
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[:size, :size]
    inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2
    picture = np.full((size, size, 3), 255, dtype=np.uint8)
    picture[inside] = (220, 20, 20)
    return Image.fromarray(picture)


def box_mask(size):
    import numpy as np
    from PIL import Image

    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 8:size // 2, size // 8:size // 2] = 255
    return Image.fromarray(mask, mode="L")


def kinds(size):
    """(name, GenerationParams fields, Source or None) of each kind of job measured."""
    from generation.engine.pipelines import Source

    picture, mask = red_circle(size), box_mask(size)
    rows = [("text to image", {}, None)]
    rows += [(f"img2img, strength {s:g}", {"strength": s}, Source(picture))
             for s in (0.25, 0.5, 0.75, 1.0)]
    rows += [("inpaint, strength 0.75", {"strength": 0.75}, Source(picture, mask)),
             ("outpaint 16 px left and right", {"strength": 1.0, "outpaint_left": 16,
                                                "outpaint_right": 16}, Source(picture)),
             ("text to image + hires fix 2x at 0.5", {"hires_scale": 2.0,
                                                      "hires_strength": 0.5}, None)]
    return rows


def measure(cache, model, size, steps, repeats):
    from generation.engine.params import GenerationParams

    results = []
    for name, fields, source in kinds(size):
        params = GenerationParams("a red circle on a white background", width=size,
                                  height=size, steps=steps, seed=1, **fields)
        unet_steps = []

        def run(params=params, source=source, unet_steps=unet_steps):
            unet_steps.clear()
            return cache.generate(model, params, source=source,
                                  on_step=lambda done, total: unet_steps.append(done))

        run()  # warm-up: the derived pipeline is made on the first call of its kind
        seconds = [benchlib.timed(run)[0] for _ in range(repeats)]
        results.append((name, len(unet_steps), seconds))
    return results


def main():
    sd15 = "--sd15" in sys.argv
    if sd15:
        sys.argv.remove("--sd15")
    args = benchlib.arguments(__doc__.splitlines()[0])
    from generation.engine.pipelines import PipelineCache

    cache = PipelineCache()
    models = [("tiny demo", benchlib.demo_model, 64, 20, 2 if args.quick else 3)]
    if sd15:
        models.append(("SD1.5-shaped", benchlib.sd15_shaped_model, 64, 4, 1))
    for label, build, size, steps, repeats in models:
        model = build()
        results = measure(cache, model, size, steps, repeats)
        base = benchlib.median(results[0][2])
        rows = [[name, unet, benchlib.summary(seconds),
                 f"{benchlib.median(seconds) / base:.2f}"]
                for name, unet, seconds in results]
        benchlib.print_table(
            f"{label}: {size}x{size}, {steps} steps (the model's own PNDM)",
            ["job", "UNet steps run", "seconds", "x text to image"], rows)
        cache.release()


if __name__ == "__main__":
    main()
