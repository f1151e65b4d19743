"""The generation parameters: one frozen dataclass that the engine takes whole.

A Job stores these fields (generation/models.py), the API's serializer and the generate
form are made from them, and the PNG `parameters` text is written from them
(`parameters_text`). Adding a parameter means adding it here, to its rule in
generation/validation.py, and to its place in the UI.

No Django here, as in the rest of the engine.
"""

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from .metadata import parameters_text


@dataclass(frozen=True)
class GenerationParams:
    """One prompt's request: `num_images` images, image j drawn with seed `seed + j`."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance_scale: float = 7.5
    seed: int = 0
    scheduler: str | None = None  # a key of pipelines.SCHEDULERS; None: the model's own
    num_images: int = 1

    def image_seeds(self) -> list[int]:
        """The seed of each image, in output order (A1111's convention for a batch): a
        prompt gives the same images alone or in a batch, and any one image can be drawn
        again alone with its own seed and num_images=1."""
        return [self.seed + j for j in range(self.num_images)]

    def shape(self) -> tuple:
        """What prompts must share to run as one batched pipeline call."""
        return (self.width, self.height, self.steps, self.guidance_scale, self.scheduler,
                self.num_images)

    def for_image(self, seed: int) -> "GenerationParams":
        """The parameters of one of the images: its own seed, one image."""
        return replace(self, seed=seed, num_images=1)

    def parameters_text(self, *, sampler: str, model_name: str | None = None,
                        model_sha256: str | None = None,
                        loras: Sequence[tuple[str, str]] = ()) -> str:
        """The A1111 `parameters` text of one image drawn with these parameters."""
        return parameters_text(
            prompt=self.prompt, negative_prompt=self.negative_prompt, steps=self.steps,
            sampler=sampler, cfg_scale=self.guidance_scale, seed=self.seed,
            width=self.width, height=self.height, model_name=model_name,
            model_sha256=model_sha256, loras=loras,
        )


# The fields, in order: what a Job stores and the API and the form offer.
FIELDS = [field.name for field in fields(GenerationParams)]
