"""Example bodies of the generation API, for its schema (/api/schema/).

Taken from a real session on the demo model (docs/api.md walks through it).
"""

from albums.api_examples import image_urls

JOB_CREATE = {"prompt": "a lighthouse at dusk, oil painting", "width": 64, "height": 64,
              "steps": 4, "seed": 1234}

JOB_WITH_LORA = {"prompt": "lhs, a lighthouse in a storm", "loras": [{"id": 2, "weight": 0.8}],
                 "width": 64, "height": 64, "steps": 4, "seed": 99}

JOB_IMG2IMG = {"prompt": "a lighthouse in a storm", "init_image": 1, "strength": 0.5}

JOB_INPAINT = {"prompt": "a green square", "init_image": 1, "mask": 2, "strength": 1.0,
               "mask_blur": 4, "keep_unmasked": True}

JOB_OUTPAINT = {"prompt": "a wide beach", "init_image": 1, "outpaint": {"left": 64, "right": 64}}

JOB_HIRES = {"prompt": "a lighthouse at dusk", "width": 512, "height": 512,
             "hires": {"scale": 2, "strength": 0.5}}

JOB_UPSCALE = {"prompt": "a lighthouse", "init_image": 1, "width": 1024, "height": 1024,
               "strength": 0.0, "upscaler": 7}

JOB_QUEUED = {
    "id": 1,
    "status": "queued",
    "progress": 0.0,
    "error": "",
    "owner": "edith",
    "batch": None,
    "prompt": "a lighthouse at dusk, oil painting",
    "negative_prompt": "",
    "model": 1,
    "loras": [],
    "width": 64,
    "height": 64,
    "steps": 4,
    "guidance_scale": 7.5,
    "seed": 1234,
    "scheduler": "pndm",
    "num_images": 1,
    "clip_skip": 1,
    "init_image": None,
    "mask": None,
    "strength": 0.75,
    "mask_blur": 4,
    "keep_unmasked": True,
    "outpaint": {"left": 0, "right": 0, "up": 0, "down": 0},
    "hires": None,
    "upscaler": None,
    "images": [],
    "queued_at": "2026-11-26T07:03:10.300103Z",
    "started_at": None,
    "finished_at": None,
    "worker": "",
    "remix_of": None,
}

JOB = {
    **JOB_QUEUED,
    "status": "succeeded",
    "progress": 1.0,
    "images": [{"id": 1, **image_urls(1)}],
    "started_at": "2026-11-26T07:03:10.577556Z",
    "finished_at": "2026-11-26T07:03:15.313988Z",
    "worker": "gpu-1:14112",
}

JOB_REMIX = {**JOB_QUEUED, "id": 3, "queued_at": "2026-11-26T07:04:02.125916Z", "remix_of": 1}

JOB_REFUSED = {"steps": ["steps must be between 1 and 150; got 500."]}

RATE_LIMITED = {"detail": "Rate limit: at most 10 generation requests per minute."}

QUEUE_FULL = {"detail": "The queue is full: 100 jobs are waiting and at most 100 may. "
                        "Try again later."}

BATCH_CREATE = {"set": "seaside", "theme": "at dawn", "steps": 4, "seed": 5}

BATCH = {
    "id": 1,
    "set": "seaside",
    "theme": "at dawn",
    "owner": "edith",
    "status": "succeeded",
    "progress": 1.0,
    "total": 2,
    "succeeded": 2,
    "failed": 0,
    "album": 3,
    "created_at": "2026-11-26T07:04:08.222417Z",
    "finished_at": "2026-11-26T07:04:09.682576Z",
}

BATCH_QUEUED = {**BATCH, "status": "queued", "progress": 0.0, "succeeded": 0,
                "finished_at": None}

PROMPT_SET_CREATE = {"name": "Seaside", "prompt_template": "{subject} on a {place}",
                     "width": 64, "height": 64, "example_theme": "at dawn"}

PROMPT_SET = {
    "id": 1,
    "name": "Seaside",
    "slug": "seaside",
    "description": "",
    "base_prompt": "",
    "prompt_template": "{subject} on a {place}",
    "style_suffix": "",
    "example_theme": "at dawn",
    "width": 64,
    "height": 64,
    "negative_prompt": "",
    "loras": [],
    "items": [{"position": 0, "values": {"subject": "a lighthouse", "place": "cliff"}},
              {"position": 1, "values": {"subject": "a fishing boat", "place": "harbour"}}],
}

PROMPT_SET_REFUSED = {"prompt_template": ["prompt_template names columns the items lack: "
                                          "theme."]}

MODEL_CREATE = {"name": "SD 1.5", "kind": "base",
                "source": "stable-diffusion-v1-5/stable-diffusion-v1-5", "family": "sd15"}

MODEL = {
    "id": 1,
    "name": "demo",
    "kind": "base",
    "source": "/srv/imagineer/models/demo",
    "sha256": "371cd110cb17a4a17183f549a8d6b37749bacdd80e5c031166d5d6ae7ee5ec8d",
    "size_bytes": 0,
    "family": "sd15",
    "trigger_words": "",
    "version": "1",
    "is_active": True,
    "is_default": True,
    "description": "Tiny pipeline with random weights, for tests and demos.",
    "metrics": {},
    "created_at": "2026-11-26T07:02:49.824346Z",
}

LORA = {
    "id": 2,
    "name": "lighthouse",
    "kind": "lora",
    "source": "",
    "sha256": "348cfb179abbdb2530519b388e6f51c2f4858ee45c5c9e83a64ae2c33e7a0814",
    "size_bytes": 72104,
    "family": "sd15",
    "trigger_words": "lhs",
    "version": "run 1",
    "is_active": True,
    "is_default": False,
    "description": "Trained by training run 1 on 1 images with demo 1.",
    "metrics": {"final_loss": 1.118629, "steps": 20, "training_run": 1, "rank": 4,
                "alpha": 4.0, "resolution": 64, "dataset_size": 1},
    "created_at": "2026-11-26T07:03:29.499710Z",
}

MODEL_REFUSED = {"source": ["Give a hub id or local path, or upload a .safetensors file."]}

SITE_SETTINGS = {
    "default_negative_prompt": "",
    "default_width": 512,
    "default_height": 512,
    "default_steps": 25,
    "default_guidance_scale": 7.5,
    "default_scheduler": "pndm",
    "jobs_per_minute": 10,
    "batches_per_hour": 3,
    "max_active_jobs": 10,
    "editor_jobs_per_minute": 10,
    "editor_batches_per_hour": 3,
    "editor_max_active_jobs": 10,
    "max_queue": 100,
    "max_batch": 4,
    "nsfw_threshold": 0.8,
    "updated_at": None,
}
