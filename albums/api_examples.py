"""Example bodies of the images, albums and captioning API, for its schema (/api/schema/).

Taken from a real session on the demo model (docs/api.md walks through it).
"""

BASE = "http://127.0.0.1:8000"


def image_urls(image_id):
    return {"url": f"{BASE}/media/images/{image_id}/",
            "thumbnail_url": f"{BASE}/media/images/{image_id}/thumbnail/"}


IMAGE = {
    "id": 1,
    **image_urls(1),
    "width": 64,
    "height": 64,
    "size_bytes": 11513,
    "format": "PNG",
    "sha256": "e2cefc3a3d3974d45dad23e80e08335332c685ca3df01352607c908733d85ea8",
    "source": "generated",
    "prompt": "a lighthouse at dusk, oil painting",
    "params": {"job": 1, "prompt": "a lighthouse at dusk, oil painting", "negative_prompt": "",
               "model": "demo", "model_hash": "371cd110cb", "loras": [], "width": 64,
               "height": 64, "steps": 4, "guidance_scale": 7.5, "seed": 1234,
               "scheduler": "pndm"},
    "nsfw": False,
    "caption": "lhs, a lighthouse at dusk",
    "created_by": 1,
    "created_at": "2026-11-26T07:03:15.313342Z",
}

IMAGE_CHANGE = {"caption": "lhs, a lighthouse at dusk"}

UPLOADED = {
    "id": 5,
    "width": 64,
    "height": 64,
    "sha256": "9b1f0c5be0d3b4b8f3a2b1e8f4c6d7a9e0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
    **image_urls(5),
    "duplicate": False,
}

UPLOAD_REFUSED = {"file": ["items.csv: not a PNG, JPEG or WebP image"]}

ALBUM = {
    "id": 1,
    "name": "Lighthouses",
    "slug": "lighthouses",
    "description": "For the lighthouse LoRA",
    "owner": 1,
    "visibility": "private",
    "cover": None,
    "cover_thumbnail_url": f"{BASE}/media/images/1/thumbnail/",
    "is_training_set": True,
    "image_count": 1,
    "created_at": "2026-11-26T07:03:19.594521Z",
    "updated_at": "2026-11-26T07:04:02.277000Z",
}

ALBUM_CREATE = {"name": "Lighthouses", "description": "For the lighthouse LoRA",
                "is_training_set": True}

IMAGE_IDS = {"image_ids": [1]}

NO_SUCH_IMAGES = {"detail": "Not found: the fields below name no object you may see.",
                  "image_ids": ["No images with ids [42]."]}

IMPORTED = {"images": [{**UPLOADED, "id": 1, **image_urls(1), "duplicate": True}],
            "skipped": ["notes.pdf"]}

CAPTION_RUN = {
    "id": 3,
    "album": 1,
    "status": "queued",
    "total": 12,
    "done": 0,
    "empty": 0,
    "failed": 0,
    "error": "",
    "summary": "Queued: 12 images to caption.",
    "created_at": "2026-11-26T07:10:02.125916Z",
    "started_at": None,
    "finished_at": None,
    "status_url": f"{BASE}/api/caption-runs/3/",
}

CAPTIONING_OFF = {"detail": "Automatic captioning is off: set IMAGINEER_CAPTION_MODEL to a "
                            "transformers image-to-text model (a hub id or a local directory)."}

SCRAPE_REQUEST = {"start_url": "https://example.org/gallery/", "depth": 1, "max_images": 50,
                  "same_site": True, "min_width": 256, "min_height": 256,
                  "album_name": "Gallery finds", "caption": True}

SCRAPE_RUN = {
    "id": 4,
    "start_url": "https://example.org/gallery/",
    "depth": 1,
    "max_images": 50,
    "same_site": True,
    "min_width": 256,
    "min_height": 256,
    "caption": True,
    "album": 7,
    "status": "running",
    "progress": 0.24,
    "pages_visited": 3,
    "images_found": 17,
    "images_kept": 12,
    "refused": {"too-small": 3, "robots": 1, "not-accepted": 1},
    "refusals": [["https://example.org/private/", "robots",
                  "https://example.org/private/: robots.txt forbids it"]],
    "caption_run": None,
    "error": "",
    "summary": "Scraping: 3 pages visited, 17 images found, 12 kept, 5 refused.",
    "attempts": 1,
    "created_at": "2026-11-27T15:10:02.125916Z",
    "started_at": "2026-11-27T15:10:03.002114Z",
    "finished_at": None,
    "status_url": f"{BASE}/api/scrape-runs/4/",
}
