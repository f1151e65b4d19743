"""The NSFW classifier: how likely a picture is to be not safe for work, from 0 to 1.

No Django here (as in the rest of the engine): generation/nsfw.py picks the model from
the settings (IMAGINEER_NSFW_MODEL), loads the pictures and stores the scores.

The model is any transformers image-classification model with a label named "nsfw"
(case ignored), as Falconsai/nsfw_image_detection has ("normal", "nsfw"): a folder that
save_pretrained wrote (the model and its image processor), or a hub id. It is loaded once
per worker process (`get_scorer`), with `local_files_only` unless the caller allows
downloads, so a worker never reaches the network for it by surprise. The score of a
picture is the softmax probability of the "nsfw" label.

`build_tiny_nsfw_classifier(dir)` saves a tiny ViT classifier whose weights are set by
hand, not trained: a picture most of whose area is red reads nsfw (score about 0.88),
any other reads normal (about 0.12). It is the real code path without a download, for
tests and demos.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

NSFW_LABEL = "nsfw"


class NsfwModelUnusable(ValueError):
    """The model has no "nsfw" label: its scores would mean nothing."""


class NsfwScorer:
    """A transformers image classifier and the index of its "nsfw" label."""

    def __init__(
        self, name: str, *, local_files_only: bool = True, device: str | None = None
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor: Any = AutoImageProcessor.from_pretrained(
            name, local_files_only=local_files_only
        )
        self.model: Any = (
            AutoModelForImageClassification.from_pretrained(name, local_files_only=local_files_only)
            .to(self.device)
            .eval()
        )
        labels = {
            str(label).lower(): int(index) for index, label in self.model.config.id2label.items()
        }
        if NSFW_LABEL not in labels:
            raise NsfwModelUnusable(
                f"{name} has no {NSFW_LABEL!r} label (its labels: "
                f"{', '.join(sorted(labels))}): set IMAGINEER_NSFW_MODEL to an image "
                f"classifier with one, such as Falconsai/nsfw_image_detection."
            )
        self.index = labels[NSFW_LABEL]

    def score(self, pictures: Sequence[Image.Image]) -> list[float]:
        """The probability of the "nsfw" label for each picture, in order."""
        import torch

        if not pictures:
            return []
        inputs = self.processor(
            images=[picture.convert("RGB") for picture in pictures], return_tensors="pt"
        )
        with torch.inference_mode():
            logits = self.model(
                pixel_values=inputs["pixel_values"].to(self.device, self.model.dtype)
            ).logits
        probabilities = logits.float().softmax(dim=-1)[:, self.index]
        return [float(value) for value in probabilities.cpu()]


_scorers: dict[tuple[str, bool], NsfwScorer] = {}
_lock = threading.Lock()


def get_scorer(name: str, *, local_files_only: bool = True) -> NsfwScorer:
    """The scorer of model `name`, loaded on first use and kept for the process. A model
    that fails to load is not kept: the next call tries again."""
    key = (name, local_files_only)
    with _lock:
        if key not in _scorers:
            _scorers[key] = NsfwScorer(name, local_files_only=local_files_only)
        return _scorers[key]


def build_tiny_nsfw_classifier(directory: str | Path) -> Path:
    """Save a tiny ViT image classifier ("normal", "nsfw") to `directory`: red pictures
    read nsfw. Its weights are set by hand (no training, no download):

    - the patch embedding gives each 16 px patch two features, `redness - 0.5` and its
      negative, where redness is R - (G + B) / 2 of the normalised pixels (red 2, white
      and black 0, blue -1);
    - the one encoder layer's attention is uniform (zero queries and keys) and passes the
      features on (identity values and output), so the class token takes the mean of the
      patches' signs (the layer norm before it makes each patch +1 or -1);
    - the final layer norm makes that mean +1 (most patches red) or -1, and the
      classifier turns it into logits of +-1: 0.88 or 0.12 after the softmax.
    """
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    size, patch = 32, 16
    config = ViTConfig(
        image_size=size,
        patch_size=patch,
        num_channels=3,
        hidden_size=2,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=2,
        id2label={0: "normal", 1: NSFW_LABEL},
        label2id={"normal": 0, NSFW_LABEL: 1},
    )
    model = ViTForImageClassification(config).eval()
    per_pixel = 1.0 / (patch * patch)
    redness = torch.tensor([1.0, -0.5, -0.5]).view(3, 1, 1).expand(3, patch, patch) * per_pixel
    # By the parameters' names, as transformers 4 (attention.attention.value,
    # attention.output.dense) and 5 (attention.v_proj, attention.o_proj) call them.
    weights = {
        "patch_embeddings.projection.weight": torch.stack([redness, -redness]),
        "patch_embeddings.projection.bias": torch.tensor([-0.5, 0.5]),
        "attention.value.weight": torch.eye(2),
        "v_proj.weight": torch.eye(2),
        "attention.output.dense.weight": torch.eye(2),
        "o_proj.weight": torch.eye(2),
        # logits: normal = -h0, nsfw = +h0, h0 = +-1 after the final layer norm.
        "classifier.weight": torch.tensor([[-0.5, 0.5], [0.5, -0.5]]),
    }
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            value = next(
                (weight for suffix, weight in weights.items() if name.endswith(suffix)), None
            )
            if value is not None:
                parameter.copy_(value)
            else:  # layer norms scale by 1; every other weight and bias is 0
                is_norm_weight = "layernorm" in name and name.endswith("weight")
                parameter.fill_(1.0 if is_norm_weight else 0.0)
    directory = Path(directory)
    model.save_pretrained(directory)
    ViTImageProcessor(
        size={"height": size, "width": size}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]
    ).save_pretrained(directory)
    return directory
