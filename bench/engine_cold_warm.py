"""Cold against warm: the first job of a fresh worker process against the next ones.

A fresh worker pays for importing torch and diffusers, loading the base pipeline and a
first call (allocator and kernel warm-up) before its first image; later jobs reuse the
loaded pipeline from the PipelineCache. Measured on the SD1.5-shaped pipeline (real
SD 1.5 shapes, random weights) at 64x64 so it runs on a CPU.
"""

import time

import benchlib

SIZE, STEPS = 64, 2


def main():
    # Before anything else imports them: the engine imports torch and diffusers lazily.
    started = time.perf_counter()
    import diffusers  # noqa: F401
    import torch  # noqa: F401

    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache

    import_seconds = time.perf_counter() - started
    args = benchlib.arguments(__doc__.splitlines()[0])
    model = benchlib.sd15_shaped_model()  # built once, outside the timings

    cache = PipelineCache()

    def job(seed):
        return cache.generate(model, GenerationParams("a lighthouse at dusk", seed=seed,
                                                     width=SIZE, height=SIZE, steps=STEPS))

    load_seconds, _ = benchlib.timed(cache.pipeline, model)
    first_seconds, _ = benchlib.timed(job, 0)
    warm = [benchlib.timed(job, seed)[0] for seed in range(1, 3 if args.quick else 6)]
    warm_median = benchlib.median(warm)
    cold = import_seconds + load_seconds + first_seconds

    benchlib.print_table(
        f"Cold against warm: SD1.5-shaped pipeline, {SIZE}x{SIZE}, {STEPS} steps (PNDM)",
        ["phase", "seconds"],
        [
            ["import torch + diffusers + engine", f"{import_seconds:.3f}"],
            ["load the base pipeline (files in the OS page cache)", f"{load_seconds:.3f}"],
            ["first call after the load", f"{first_seconds:.3f}"],
            ["**first job of a fresh worker** (sum of the above)", f"{cold:.3f}"],
            ["**warm job** (pipeline already loaded)", benchlib.summary(warm)],
            ["cold / warm", f"{cold / warm_median:.1f}x"],
        ],
    )


if __name__ == "__main__":
    main()
