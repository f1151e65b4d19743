"""Batched against sequential: 8 prompts in one pipeline call against 8 calls.

A batch of jobs with the same size, model and LoRAs runs as one call with a list of
prompts (each with its own seeded generator). Measured on the tiny demo model and on the
SD1.5-shaped pipeline, at 64x64, after one warm-up call.
"""

import benchlib

PROMPTS = [
    f"card {n}: the {name}"
    for n, name in enumerate(
        ["fool", "magician", "priestess", "empress", "emperor", "hierophant", "lovers", "chariot"]
    )
]


def compare(cache, model, steps, repeats):
    from generation.engine.params import GenerationParams

    def call(prompts, seeds):
        return cache.generate(model, [GenerationParams(prompt, seed=seed, width=64, height=64,
                                                       steps=steps)
                                      for prompt, seed in zip(prompts, seeds, strict=True)])

    call(PROMPTS[:1], [0])  # warm-up: load and first call
    sequential, batched = [], []
    for _ in range(repeats):
        sequential.append(
            sum(benchlib.timed(call, [prompt], [seed])[0] for seed, prompt in enumerate(PROMPTS))
        )
        batched.append(benchlib.timed(call, PROMPTS, list(range(len(PROMPTS))))[0])
    return sequential, batched


def main():
    args = benchlib.arguments(__doc__.splitlines()[0])
    from generation.engine.pipelines import PipelineCache

    cache = PipelineCache()
    rows = []
    for name, model, steps, repeats in (
        ("tiny demo", benchlib.demo_model(), 4, 2 if args.quick else 5),
        ("SD1.5-shaped", benchlib.sd15_shaped_model(), 2, 1),
    ):
        sequential, batched = compare(cache, model, steps, repeats)
        seq, bat = benchlib.median(sequential), benchlib.median(batched)
        rows.append(
            [
                name,
                steps,
                benchlib.summary(sequential),
                benchlib.summary(batched),
                f"{seq / bat:.2f}x",
                f"{len(PROMPTS) / seq:.2f}",
                f"{len(PROMPTS) / bat:.2f}",
            ]
        )
    benchlib.print_table(
        "Batched against sequential: 8 prompts at 64x64",
        [
            "model",
            "steps",
            "8 calls, s",
            "1 call of 8, s",
            "speed-up",
            "images/s sequential",
            "images/s batched",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
