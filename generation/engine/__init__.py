"""The diffusers side of Imagineer. It imports no Django code: plain parameters and
paths go in; images, bytes and numbers come out.

- params: GenerationParams, the frozen dataclass of one prompt's parameters, which
  `generate` takes whole (a Job stores its fields; the PNG text is written from it).
- pipelines: `get_cache()` -> the process's PipelineCache; `generate(source, params)`,
  which returns the images with each one's parameters and the sampler (`Generated`), LoRA
  hot-swap, idle release, `Cancelled`, the scheduler map (SCHEDULERS, sampler_name).
- device: CUDA in fp16 when present, else the CPU in fp32; compiled mode (compile_unet,
  IMAGINEER_COMPILE).
- metadata: the A1111 `parameters` text and `png_bytes(image, parameters)`.
- upscalers: ESRGAN-family upscaler models in torch (RRDBNet, SRVGGNetCompact):
  `inspect_upscaler`, `load_upscaler`, `NotAnUpscaler`, `random_state_dict` (tests).
- lora: `inspect_lora`, `check_lora_family`, `lora_sha256`, `make_random_lora`.
- world: the demo model's procedural world (Spec, render, caption, sample_spec,
  parse_prompt); judge: `judge(image)` reads a picture of it back from its pixels.
- demo / sd15_shaped: random-weight pipelines built locally (tests; benchmarks).
"""
