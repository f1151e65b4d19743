"""Switching LoRA on a loaded pipeline against reloading the whole pipeline with the LoRA.

The PipelineCache keeps LoRAs loaded as named adapters and switches with set_adapters;
the alternative it avoids is a fresh pipeline per LoRA. Measured on the SD1.5-shaped
pipeline with two random rank-4 LoRAs on to_q/to_k/to_v/to_out.0.
"""

import benchlib

SIZE, STEPS = 64, 2


def main():
    args = benchlib.arguments(__doc__.splitlines()[0])
    from generation.engine.params import GenerationParams
    from generation.engine.pipelines import PipelineCache

    model = benchlib.sd15_shaped_model()
    first, second = (
        ("a", benchlib.random_lora(model, 1), 1.0),
        ("b", benchlib.random_lora(model, 2), 1.0),
    )
    cache = PipelineCache(max_loras=4)
    pipeline = cache.pipeline(model)
    repeats = 2 if args.quick else 5

    load_adapter = [
        benchlib.timed(cache.use_loras, pipeline, [lora])[0] for lora in (first, second)
    ]
    switch = [
        benchlib.timed(cache.use_loras, pipeline, [lora])[0]
        for _ in range(repeats * 5)
        for lora in (first, second)
    ]
    disable = [benchlib.timed(cache.use_loras, pipeline, [])[0] for _ in range(repeats * 5)]

    def job(lora):
        return cache.generate(model, GenerationParams("a cat", seed=1, width=SIZE, height=SIZE,
                                                     steps=STEPS), loras=[lora])

    job(first)
    switching_jobs = [benchlib.timed(job, lora)[0] for lora in (second, first) * repeats]
    same_lora_jobs = [benchlib.timed(job, first)[0] for _ in range(repeats * 2)]

    def reload_with(lora):
        cache.release()
        cache.use_loras(cache.pipeline(model), [lora])

    # safetensors maps the files and copies lazily, so part of a reload's cost shows up
    # in the first job after it: time both.
    reload_order = (first, second) if args.quick else (first, second, first)
    reloads = [benchlib.timed(reload_with, lora)[0] for lora in reload_order]
    reload_jobs = []
    for lora in reload_order:
        seconds, _ = benchlib.timed(reload_with, lora)
        reload_jobs.append(seconds + benchlib.timed(job, lora)[0])

    benchlib.print_table(
        f"LoRA switch against pipeline reload: SD1.5-shaped pipeline, {SIZE}x{SIZE}, {STEPS} steps",
        ["operation", "seconds: median (min-max, n)"],
        [
            ["**switch between loaded adapters** (set_adapters)", benchlib.summary(switch)],
            ["turn LoRAs off (disable_lora)", benchlib.summary(disable)],
            ["load a LoRA as a new adapter (once per LoRA)", benchlib.summary(load_adapter)],
            ["**reload the whole pipeline + load the LoRA**", benchlib.summary(reloads)],
            ["job with the same LoRA as the previous job", benchlib.summary(same_lora_jobs)],
            ["**job after a switch** (set_adapters + job)", benchlib.summary(switching_jobs)],
            ["**job after a reload** (reload + LoRA + job)", benchlib.summary(reload_jobs)],
        ],
    )


if __name__ == "__main__":
    main()
