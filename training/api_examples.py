"""Example bodies of the training API, for its schema (/api/schema/).

Taken from a real session on the demo model (docs/api.md walks through it).
"""

from albums.api_examples import image_urls

RUN_CREATE = {"album": 1, "name": "lighthouse", "trigger_word": "lhs", "resolution": 64,
              "steps": 20, "rank": 4, "alpha": 4, "learning_rate": 0.001,
              "checkpoint_every": 10, "validation_prompt": "lhs, a lighthouse"}

RUN_QUEUED = {
    "id": 1,
    "name": "lighthouse",
    "album": 1,
    "base_model": 1,
    "owner": "edith",
    "rank": 4,
    "alpha": 4.0,
    "learning_rate": 0.001,
    "steps": 20,
    "batch_size": 1,
    "gradient_accumulation": 1,
    "resolution": 64,
    "seed": 938813780,
    "trigger_word": "lhs",
    "center_crop": True,
    "random_flip": False,
    "train_convolutions": False,
    "checkpoint_every": 10,
    "validation_prompt": "lhs, a lighthouse",
    "status": "queued",
    "progress": 0.0,
    "current_step": 0,
    "losses": [],
    "log_tail": "",
    "error": "",
    "attempts": 0,
    "lora": None,
    "validation_album": None,
    "validation_images": [],
    "created_at": "2026-11-26T07:03:21.773238Z",
    "started_at": None,
    "finished_at": None,
}

RUN = {
    **RUN_QUEUED,
    "status": "succeeded",
    "progress": 1.0,
    "current_step": 20,
    "losses": [[1, 1.188744], [2, 1.098002], [3, 1.11583], [19, 1.107705], [20, 1.118629]],
    "log_tail": "2026-11-26 07:03:25 Training on 1 images at 64 px, cpu float32: steps 1..20, "
                "1 x 1 images a step, rank 4, alpha 4.0\n"
                "2026-11-26 07:03:26 Checkpoint saved at step 10\n"
                "2026-11-26 07:03:27 Saved the LoRA after 20 steps\n"
                "2026-11-26 07:03:29 Done: the LoRA is model 2 (348cfb179a)",
    "attempts": 1,
    "lora": 2,
    "validation_album": 2,
    "validation_images": [{"prompt": "lhs, a lighthouse", "seed": 938813780,
                           "without_lora": {"id": 2, **image_urls(2)},
                           "with_lora": {"id": 3, **image_urls(3)}}],
    "started_at": "2026-11-26T07:03:21.932813Z",
    "finished_at": "2026-11-26T07:03:29.530512Z",
}

RUN_REFUSED = {"steps": ["steps must be between 1 and 20000; got 0."]}
