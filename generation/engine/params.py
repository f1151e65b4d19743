"""The generation parameters: one frozen dataclass that the engine takes whole.

A Job stores these fields (generation/models.py), the API's serializer and the generate
form are made from them, and the PNG `parameters` text is written from them
(`parameters_text`). Adding a parameter means adding it here, to its rule in
generation/validation.py, and to its place in the UI.

No Django here, as in the rest of the engine.
"""

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

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
    # Image to image (used when the call is given a source image, pipelines.Source):
    # how far from the source the result may go (0 keeps it, 1 ignores it; A1111's
    # "Denoising strength"); the mask's blur radius in pixels; whether the pixels outside
    # the mask are the source's own, exactly; the pixels to add on each side
    # (outpainting). width x height is the size the source is drawn at; the canvas, what
    # the pipeline draws, adds the outpainted sides to it (canvas_size).
    strength: float = 0.75
    mask_blur: int = 4
    keep_unmasked: bool = True
    outpaint_left: int = 0
    outpaint_right: int = 0
    outpaint_up: int = 0
    outpaint_down: int = 0
    # Hires fix: draw, upscale by hires_scale (0: off; 1.5 to 2), then draw again from the
    # upscaled picture at hires_strength.
    hires_scale: float = 0.0
    hires_strength: float = 0.5
    # A1111's "Clip skip": 1 conditions on the text encoder's last layer, 2 on the one
    # before it (what many SD 1.x anime models were trained with), and so on.
    clip_skip: int = 1

    def image_seeds(self) -> list[int]:
        """The seed of each image, in output order (A1111's convention for a batch): a
        prompt gives the same images alone or in a batch, and any one image can be drawn
        again alone with its own seed and num_images=1."""
        return [self.seed + j for j in range(self.num_images)]

    def shape(self) -> tuple:
        """What prompts must share to run as one batched pipeline call."""
        return (self.width, self.height, self.steps, self.guidance_scale, self.scheduler,
                self.num_images, self.strength, self.mask_blur, self.keep_unmasked,
                self.outpaint(), self.hires_scale, self.hires_strength, self.clip_skip)

    def outpaint(self) -> tuple[int, int, int, int]:
        """The pixels added on each side: (left, right, up, down)."""
        return (self.outpaint_left, self.outpaint_right, self.outpaint_up,
                self.outpaint_down)

    def canvas_size(self) -> tuple[int, int]:
        """The size the pipeline draws: width x height and the outpainted sides."""
        left, right, up, down = self.outpaint()
        return (self.width + left + right, self.height + up + down)

    def result_size(self) -> tuple[int, int]:
        """The size of the images: the canvas, times hires_scale (to a multiple of 8)
        when the hires fix is on."""
        width, height = self.canvas_size()
        if not self.hires_scale:
            return (width, height)
        return (_multiple_of_8(width * self.hires_scale),
                _multiple_of_8(height * self.hires_scale))

    def for_image(self, seed: int) -> "GenerationParams":
        """The parameters of one of the images: its own seed, one image."""
        return replace(self, seed=seed, num_images=1)

    def parameters_text(self, *, sampler: str, model_name: str | None = None,
                        model_sha256: str | None = None,
                        vae_name: str | None = None, vae_sha256: str | None = None,
                        loras: Sequence[tuple[str, str]] = (), mode: str = "txt2img",
                        upscaler: str = "Lanczos") -> str:
        """The A1111 `parameters` text of one image drawn with these parameters.

        mode: what the call did (Source.mode(): "txt2img", "img2img" or "inpaint"); the
        image to image fields are written only where A1111 writes them. upscaler: what
        upscaled the picture: "Hires upscaler" with the hires fix; from a source, an
        upscaler model that brought it to the size is written as "Upscaler" (the plain
        resampler, "Lanczos", is not: A1111 writes nothing for its own resize)."""
        extra: list[tuple[str, Any]] = []
        if mode != "txt2img":
            extra.append(("Denoising strength", f"{self.strength:g}"))
        if mode == "inpaint":
            extra.append(("Mask blur", self.mask_blur))
        if any(self.outpaint()):
            left, right, up, down = self.outpaint()
            extra.append(("Outpaint", f"left {left} right {right} up {up} down {down}"))
        if mode != "txt2img" and upscaler != "Lanczos":
            extra.append(("Upscaler", upscaler))
        if self.clip_skip > 1:
            extra.append(("Clip skip", self.clip_skip))
        if self.hires_scale:
            if mode == "txt2img":
                extra.append(("Denoising strength", f"{self.hires_strength:g}"))
            extra += [("Hires upscale", f"{self.hires_scale:g}"),
                      ("Hires steps", self.steps), ("Hires upscaler", upscaler)]
        return parameters_text(
            prompt=self.prompt, negative_prompt=self.negative_prompt, steps=self.steps,
            sampler=sampler, cfg_scale=self.guidance_scale, seed=self.seed,
            width=self.canvas_size()[0], height=self.canvas_size()[1],
            model_name=model_name, model_sha256=model_sha256, vae_name=vae_name,
            vae_sha256=vae_sha256, loras=loras, extra=extra,
        )


def _multiple_of_8(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


# The fields, in order: what a Job stores and the API and the form offer.
FIELDS = [field.name for field in fields(GenerationParams)]
