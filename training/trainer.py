"""The LoRA trainer: diffusers + peft, following diffusers' text-to-image LoRA recipe.

Plain parameters and paths in; weights, numbers and files out. No Django imports here, so
the loop can be tested and benchmarked alone; training/tasks.py is the seam to the models.

    result = train_lora(base_model_dir, [Example(path, caption), ...], output_dir,
                        TrainingConfig(rank=8, steps=500, trigger_word="sks"),
                        on_progress=..., on_loss=..., on_log=..., should_cancel=...,
                        checkpoint_dir=...)

The recipe (examples/text_to_image/train_text_to_image_lora.py): a peft LoRA on the UNet's
attention projections; VAE and text encoder frozen; noise-prediction MSE against the base
model's DDPM noise schedule; AdamW on the LoRA parameters only; gradient accumulation;
bf16/fp16 autocast on CUDA, fp32 on CPU. One step is one optimizer update, that is
`gradient_accumulation` batches of `batch_size` images.

Every random draw (data order, crops, flips, VAE sampling, noise, timesteps) comes from the
seed, and the generator state goes into each checkpoint, so a run that is killed and
resumed from a checkpoint computes the same losses as one that never stopped.
"""

import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
KOHYA_WEIGHT_NAME = "kohya_lora.safetensors"
TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]
# With train_convolutions: the ResNet blocks' two 3x3 convolutions too. Attention alone
# re-weights what the base already draws; a shape it never drew needs the convolutions
# (the demo UNet has no attention at its 16x16 level at all).
CONVOLUTION_MODULES = ["conv1", "conv2"]
MAX_GRAD_NORM = 1.0  # the recipe's default gradient clipping

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_CHECKPOINT_WEIGHTS = "lora.safetensors"
_CHECKPOINT_STATE = "state.pt"
# Config fields a checkpoint must share with the run that resumes it: they fix the shape
# of the LoRA and the meaning of a step.
_RESUME_MUST_MATCH = ("rank", "alpha", "batch_size", "gradient_accumulation", "resolution",
                      "train_convolutions")


@dataclass
class TrainingConfig:
    """What to train. The product's allowed ranges live with the TrainingRun model; the
    trainer only refuses values it cannot run (see check())."""

    rank: int = 16
    alpha: float = 16.0
    learning_rate: float = 1e-4
    steps: int = 500
    batch_size: int = 1
    gradient_accumulation: int = 1
    resolution: int = 512
    seed: int = 0
    trigger_word: str = ""
    center_crop: bool = True
    random_flip: bool = False
    train_convolutions: bool = False  # LoRA on the ResNets' conv1/conv2 too
    checkpoint_every: int = 0  # 0: no checkpoints
    validation_prompt: str = ""
    loss_every: int = 1  # record the mean loss of every N steps

    def check(self):
        """Raise ValueError naming the first field the trainer cannot run with."""
        positive = ("rank", "alpha", "learning_rate", "steps", "batch_size",
                    "gradient_accumulation", "resolution", "loss_every")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0, not {getattr(self, name)!r}")
        if self.resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, not {self.resolution}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be 0 or more, not {self.checkpoint_every}")


@dataclass
class Example:
    """One training image and its own caption (None or "" when it has none)."""

    image_path: str | os.PathLike
    caption: str | None = None


@dataclass
class TrainingResult:
    steps_done: int
    losses: list = field(default_factory=list)  # [(step, loss)]
    lora_path: Path | None = None  # diffusers format
    kohya_path: Path | None = None
    metadata: dict = field(default_factory=dict)  # the safetensors header fields (strings)
    resumed_from_step: int = 0  # 0 when the run started from scratch


class TrainingCancelled(Exception):
    """should_cancel() said yes. `step` is the number of steps done; nothing final was saved."""

    def __init__(self, step):
        super().__init__(f"training cancelled after step {step}")
        self.step = step


def _ignore(*args):
    pass


# --- Captions and images ------------------------------------------------------------------


def build_captions(examples, trigger_word, on_log=_ignore):
    """Return the caption trained for each example: "<trigger word>, <caption>".

    A caption that already names the trigger word (as a word of its own, anywhere) is
    trained as written: "a red zxq on a blue background" teaches the word where it
    stands. An uncaptioned image gets the trigger word alone, and a warning goes to on_log.
    """
    trigger_word = (trigger_word or "").strip()
    named = re.compile(rf"(?<!\w){re.escape(trigger_word)}(?!\w)", re.IGNORECASE)
    captions = []
    for example in examples:
        caption = (example.caption or "").strip()
        if not caption:
            on_log(
                f"warning: {Path(example.image_path).name} has no caption; "
                f"it is trained on the trigger word alone ({trigger_word!r})"
            )
        if trigger_word and named.search(caption):
            captions.append(caption)
            continue
        captions.append(", ".join(part for part in (trigger_word, caption) if part))
    return captions


def open_rgb(path):
    """Open an image file as 8-bit RGB, whatever its mode.

    Transparent pixels become white; 16- and 32-bit grey is scaled down, not clipped.
    Raises PIL's or the OS's error for a file that is not a readable image.
    """
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            # Pillow's own conversion clips these to 255: scale the range down instead.
            pixels = np.asarray(image, dtype=np.float64)
            top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
            pixels = np.clip(pixels / top * 255.0, 0, 255).round().astype(np.uint8)
            return Image.fromarray(pixels, "L").convert("RGB")
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")


def resize_shorter_side(image, resolution):
    """Scale a PIL image so its shorter side is `resolution` pixels."""
    from PIL import Image

    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


class TrainingImages:
    """The training set in memory: each image resized once (shorter side = resolution),
    then cropped, flipped and normalized to [-1, 1] each time it is drawn."""

    def __init__(self, examples, captions, config, on_log=_ignore):
        import numpy as np
        import torch

        self.config = config
        self.pixels = []  # uint8 tensors, (3, H, W)
        self.original_sizes = []  # (height, width) before resizing: SDXL's size conditioning
        self.captions = []
        for example, caption in zip(examples, captions, strict=True):
            try:
                image = open_rgb(example.image_path)
            except Exception as error:  # a broken file costs one image, not the run
                on_log(f"warning: skipped {Path(example.image_path).name}: {error}")
                continue
            self.original_sizes.append((image.height, image.width))
            image = resize_shorter_side(image, config.resolution)
            self.pixels.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous())
            self.captions.append(caption)
        if not self.pixels:
            raise ValueError("examples: no usable image to train on")
        self._order_epoch = None

    def __len__(self):
        return len(self.pixels)

    def index_at(self, position):
        """The example drawn at a position of the endless, seeded, per-epoch shuffle."""
        import torch

        epoch, offset = divmod(position, len(self))
        if self._order_epoch != epoch:
            generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
            self._order = torch.randperm(len(self), generator=generator).tolist()
            self._order_epoch = epoch
        return self._order[offset]

    def sample(self, index, generator):
        return self.cropped(index, generator)[0]

    def cropped(self, index, generator):
        """(pixel values, (top, left) of the crop in the resized image)."""
        import torch

        pixels = self.pixels[index]
        size = self.config.resolution
        _, height, width = pixels.shape
        if self.config.center_crop:
            top, left = (height - size) // 2, (width - size) // 2
        else:
            top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        pixels = pixels[:, top : top + size, left : left + size]
        if self.config.random_flip and float(torch.rand(1, generator=generator)) < 0.5:
            pixels = pixels.flip(-1)
        return pixels.float() / 127.5 - 1.0, (top, left)

    def batch(self, position, generator):
        """(pixel values (B, 3, R, R), example indexes) for the batch starting at position."""
        pixels, indexes, _ = self.conditioned_batch(position, generator)
        return pixels, indexes

    def conditioned_batch(self, position, generator):
        """batch(), and SDXL's size and crop conditioning of each picture (B, 6): its
        original size, the crop's top left corner and the target size, as the diffusers
        SDXL recipe gives them (draws the same random numbers as batch())."""
        import torch

        indexes = [self.index_at(position + i) for i in range(self.config.batch_size)]
        drawn = [self.cropped(i, generator) for i in indexes]
        size = self.config.resolution
        time_ids = torch.tensor([[*self.original_sizes[i], *crop, size, size]
                                 for i, (_, crop) in zip(indexes, drawn, strict=True)],
                                dtype=torch.float32)
        return torch.stack([pixels for pixels, _ in drawn]), indexes, time_ids


# --- Checkpoints --------------------------------------------------------------------------


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoints(checkpoint_dir):
    """Finished checkpoints in checkpoint_dir, newest first, as (step, path)."""
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return []
    found = []
    for path in Path(checkpoint_dir).iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and (path / _CHECKPOINT_STATE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def save_checkpoint(checkpoint_dir, step, lora_state, state):
    """Write checkpoint-<step> atomically: into a temporary folder, then one rename.

    A kill -9 at any moment leaves either the previous checkpoint or the new one, whole.
    Older checkpoints are removed once the new one is in place.
    """
    import torch
    from safetensors.torch import save_file

    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=checkpoint_dir))
    save_file({k: v.detach().cpu().contiguous() for k, v in lora_state.items()},
              temporary / _CHECKPOINT_WEIGHTS)
    torch.save(state, temporary / _CHECKPOINT_STATE)
    for name in (_CHECKPOINT_WEIGHTS, _CHECKPOINT_STATE):
        _fsync(temporary / name)
    final = checkpoint_dir / f"checkpoint-{step:06d}"
    if final.exists():
        shutil.rmtree(final)
    os.rename(temporary, final)
    _fsync(checkpoint_dir)
    for older_step, path in _checkpoints(checkpoint_dir):
        if older_step < step:
            shutil.rmtree(path, ignore_errors=True)
    return final


def load_latest_checkpoint(checkpoint_dir, on_log=_ignore):
    """(lora_state, state) of the newest readable checkpoint, or None when there is none.

    Also removes leftovers of checkpoints whose writing was interrupted.
    """
    import torch
    from safetensors.torch import load_file

    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    for path in Path(checkpoint_dir).glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    for step, path in _checkpoints(checkpoint_dir):
        try:
            lora_state = load_file(path / _CHECKPOINT_WEIGHTS)
            state = torch.load(path / _CHECKPOINT_STATE, weights_only=True)
        except Exception as error:
            on_log(f"warning: the checkpoint at step {step} is unreadable ({error})")
            continue
        return lora_state, state
    return None


# --- Models -------------------------------------------------------------------------------


def torch_device(device=None):
    """(torch device, weight dtype) for training, by the engine's rule (pick_device)."""
    import torch

    from generation.engine.device import pick_device

    picked = pick_device(device, training=True)
    return torch.device(picked.type), picked.dtype


def target_modules(config):
    """The UNet modules the LoRA adapts: attention, and the ResNet convolutions when the
    config asks for them."""
    return TARGET_MODULES + (CONVOLUTION_MODULES if config.train_convolutions else [])


def _load_models(base_model_dir, config, device, weight_dtype):
    """The frozen base models, and the UNet with a fresh trainable LoRA adapter:
    (tokenizers, text encoders, vae, unet, noise scheduler). One tokenizer and text
    encoder for SD 1.x/2.x, two for SDXL. The base is loaded as the engine loads it (a
    diffusers folder, a single-file checkpoint with the project's configs, or a hub id)."""
    import torch
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    from generation.engine.pipelines import load_components

    pipeline = load_components(base_model_dir, weight_dtype)
    tokenizers = [pipeline.tokenizer]
    text_encoders = [pipeline.text_encoder]
    if getattr(pipeline, "text_encoder_2", None) is not None:
        tokenizers.append(pipeline.tokenizer_2)
        text_encoders.append(pipeline.text_encoder_2)
    vae, unet = pipeline.vae, pipeline.unet
    # The noise schedule the base model was trained with, from its scheduler config.
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    for model in (*text_encoders, vae, unet):
        model.requires_grad_(False)
        model.to(device)
    if weight_dtype == torch.float16 and vae.config.get("force_upcast", False):
        vae.to(torch.float32)  # SDXL's VAE overflows in fp16 (its config says so)
    unet.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            init_lora_weights="gaussian",
            target_modules=target_modules(config),
        )
    )
    # Trainable LoRA weights stay in fp32 even when the frozen base runs in half precision.
    for parameter in unet.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.to(torch.float32)
    return tokenizers, text_encoders, vae, unet, noise_scheduler


def _encode_captions(tokenizers, text_encoders, captions, device):
    """Every caption's text embedding, computed once (the text encoders are frozen), and
    for SDXL the pooled embedding too: (embeddings, pooled or None).

    SD 1.x/2.x: the encoder's last hidden state. SDXL, as its pipeline encodes: both
    encoders' penultimate hidden states side by side, and the second's projected pooled
    output (the UNet's added text embedding)."""
    import torch

    sdxl = len(text_encoders) == 2
    embeddings, pooled = [], []
    with torch.no_grad():
        for start in range(0, len(captions), 16):
            states = []
            for tokenizer, text_encoder in zip(tokenizers, text_encoders, strict=True):
                input_ids = tokenizer(
                    captions[start : start + 16],
                    max_length=tokenizer.model_max_length,
                    padding="max_length",
                    truncation=True,
                    return_tensors="pt",
                ).input_ids.to(device)
                if not sdxl:
                    states.append(text_encoder(input_ids)[0])
                    continue
                output = text_encoder(input_ids, output_hidden_states=True)
                states.append(output.hidden_states[-2])
                last_pooled = output[0]
            embeddings.append(torch.cat(states, dim=-1))
            if sdxl:
                pooled.append(last_pooled)
    return torch.cat(embeddings), (torch.cat(pooled) if sdxl else None)


# --- Training -----------------------------------------------------------------------------


def train_lora(
    base_model_dir,
    examples,
    output_dir,
    config,
    *,
    on_progress=_ignore,
    on_loss=_ignore,
    on_log=_ignore,
    should_cancel=lambda: False,
    checkpoint_dir=None,
    base_model_name=None,
    device=None,
):
    """Train a LoRA on `examples` and save it to output_dir; return a TrainingResult.

    base_model_dir: a Stable Diffusion pipeline in diffusers layout (save_pretrained), or
        its Hugging Face hub id.
    examples: Example(image_path, caption) items; the trigger word is added here.
    on_progress(step, total): after every step, and once at the start (step = the step
        resumed from, or 0).
    on_loss(step, loss): every config.loss_every steps and at the last step, with the mean
        loss of the steps since the previous call. After a resume, steps after the last
        checkpoint are trained again and reported again: key stored losses by step.
    on_log(line): human-readable progress notes and warnings.
    should_cancel(): asked before every step; True raises TrainingCancelled.
    checkpoint_dir: where checkpoints go every config.checkpoint_every steps. When it
        holds one at the start, training resumes from the newest. None: no checkpoints.
    base_model_name: written into the LoRA's metadata (default: the folder's name).
    device: "cpu", "cuda", ... (default: CUDA when available).
    """
    import math

    import torch
    import torch.nn.functional as F
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    config.check()
    examples = list(examples)
    if not examples:
        raise ValueError("examples: there is no image to train on")
    captions = build_captions(examples, config.trigger_word, on_log)
    images = TrainingImages(examples, captions, config, on_log)
    device, weight_dtype = torch_device(device)
    torch.manual_seed(config.seed)  # the LoRA's initial weights
    tokenizers, text_encoders, vae, unet, noise_scheduler = _load_models(
        base_model_dir, config, device, weight_dtype
    )
    embeddings, pooled = _encode_captions(tokenizers, text_encoders, images.captions, device)
    del text_encoders

    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scaler = torch.amp.GradScaler(device.type, enabled=weight_dtype == torch.float16)
    generator = torch.Generator().manual_seed(config.seed)
    start_step, losses, window = 0, [], []

    checkpoint = load_latest_checkpoint(checkpoint_dir, on_log)
    if checkpoint is not None:
        lora_state, state = checkpoint
        for name in _RESUME_MUST_MATCH:
            # A checkpoint from before a field existed was made with its default.
            made = state["config"].get(name, getattr(TrainingConfig(), name))
            if made != getattr(config, name):
                raise ValueError(
                    f"{name}: the checkpoint in {checkpoint_dir} was made with "
                    f"{made!r}, this run asks for {getattr(config, name)!r}"
                )
        set_peft_model_state_dict(unet, lora_state)
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty when the checkpoint was made without fp16 scaling
            scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"])
        start_step = state["step"]
        losses = [(int(step), float(loss)) for step, loss in state["losses"]]
        window = [float(loss) for loss in state["window"]]
        on_log(f"Resumed from the checkpoint at step {start_step}")

    on_log(
        f"Training on {len(images)} images at {config.resolution} px, {device.type} "
        f"{str(weight_dtype).removeprefix('torch.')}: steps {start_step + 1}..{config.steps}, "
        f"{config.batch_size} x {config.gradient_accumulation} images a step, "
        f"rank {config.rank}, alpha {config.alpha}"
    )
    on_progress(start_step, config.steps)
    unet.train()
    autocast = torch.autocast(device.type, dtype=weight_dtype, enabled=device.type == "cuda")
    timesteps_count = noise_scheduler.config.num_train_timesteps
    for step in range(start_step + 1, config.steps + 1):
        if should_cancel():
            on_log(f"Cancelled after step {step - 1}")
            raise TrainingCancelled(step - 1)
        step_loss = 0.0
        for micro_batch in range(config.gradient_accumulation):
            position = ((step - 1) * config.gradient_accumulation + micro_batch) * config.batch_size
            pixels, indexes, time_ids = images.conditioned_batch(position, generator)
            with torch.no_grad():
                latents = vae.encode(pixels.to(device, vae.dtype)).latent_dist
                latents = latents.sample(generator=generator) * vae.config.scaling_factor
                latents = latents.to(weight_dtype)
            # SDXL's UNet also takes the pooled text and the size and crop conditioning.
            added = None if pooled is None else {
                "text_embeds": pooled[indexes], "time_ids": time_ids.to(device, weight_dtype)}
            noise = torch.randn(latents.shape, generator=generator).to(device, latents.dtype)
            timesteps = torch.randint(0, timesteps_count, (len(indexes),), generator=generator)
            timesteps = timesteps.to(device)
            noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
            if noise_scheduler.config.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(latents, noise, timesteps)
            else:
                target = noise
            with autocast:
                prediction = unet(noisy_latents, timesteps, embeddings[indexes],
                                  added_cond_kwargs=added).sample
            loss = F.mse_loss(prediction.float(), target.float()) / config.gradient_accumulation
            scaler.scale(loss).backward()
            step_loss += loss.item()
        if not math.isfinite(step_loss) and not scaler.is_enabled():
            raise FloatingPointError(
                f"the loss is {step_loss} at step {step}; try a lower learning_rate"
            )
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        window.append(step_loss)
        if step % config.loss_every == 0 or step == config.steps:
            losses.append((step, sum(window) / len(window)))
            window = []
            on_loss(*losses[-1])
        on_progress(step, config.steps)
        if checkpoint_dir is not None and config.checkpoint_every and step < config.steps:
            if step % config.checkpoint_every == 0:
                state = {
                    "step": step,
                    "config": asdict(config),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "generator": generator.get_state(),
                    "losses": losses,
                    "window": window,
                }
                save_checkpoint(checkpoint_dir, step, get_peft_model_state_dict(unet), state)
                on_log(f"Checkpoint saved at step {step}")

    metadata = {
        "base_model": base_model_name or Path(base_model_dir).name,
        "rank": str(config.rank),
        "alpha": str(config.alpha),
        "steps": str(config.steps),
        "trigger_word": config.trigger_word,
        "dataset_size": str(len(images)),
        "resolution": str(config.resolution),
        "learning_rate": str(config.learning_rate),
    }
    if pooled is not None:
        metadata["ss_base_model_version"] = "sdxl_base_v1-0"  # as kohya's scripts write it
    lora_path, kohya_path = save_lora(
        output_dir, get_peft_model_state_dict(unet), unet.peft_config["default"], metadata
    )
    on_log(f"Saved the LoRA after {config.steps} steps")
    return TrainingResult(
        steps_done=config.steps,
        losses=losses,
        lora_path=lora_path,
        kohya_path=kohya_path,
        metadata=metadata,
        resumed_from_step=start_step,
    )


# --- Output -------------------------------------------------------------------------------


def read_lora_metadata(path):
    """The safetensors header metadata of a LoRA file, as a dict of strings."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        return dict(file.metadata() or {})


def save_lora(output_dir, lora_state, lora_config, metadata):
    """Save a UNet LoRA (a peft state dict) twice, each with `metadata` in its header.

    pytorch_lora_weights.safetensors: diffusers format, as StableDiffusionPipeline.
        save_lora_weights writes it (with peft's LoRA config, so alpha survives loading),
        peft's key names (lora_A/lora_B), which carry convolutions as well as attention.
    kohya_lora.safetensors: kohya format (lora_unet_..., lora_down/lora_up, alpha), which
        A1111 and ComfyUI load, and so does diffusers' load_lora_weights.
    Both files appear whole or not at all. Returns (diffusers path, kohya path).
    """
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lora_state = {key: value.detach().cpu().contiguous() for key, value in lora_state.items()}
    with tempfile.TemporaryDirectory(prefix=".tmp-", dir=output_dir) as folder:
        temporary = Path(folder)
        StableDiffusionPipeline.save_lora_weights(
            temporary,
            # peft's own key names (lora_A/lora_B), which diffusers loads as they are:
            # its old names (lora.down) exist for attention only, and a file mixing them
            # with a convolution's lora_A loses the attention half when loaded.
            unet_lora_layers=lora_state,
            unet_lora_adapter_metadata=lora_config.to_dict(),
            safe_serialization=True,
        )
        written = temporary / DIFFUSERS_WEIGHT_NAME
        header = {**read_lora_metadata(written), **metadata}
        save_file(load_file(written), temporary / "diffusers.safetensors", metadata=header)

        kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in lora_state.items()})
        # The converter writes alpha = rank; the LoRA was trained with its own alpha.
        for key in kohya:
            if key.endswith(".alpha"):
                kohya[key] = torch.tensor(float(lora_config.lora_alpha))
        header = {
            **metadata,
            "ss_network_module": "networks.lora",
            "ss_network_dim": str(lora_config.r),
            "ss_network_alpha": str(lora_config.lora_alpha),
        }
        save_file(kohya, temporary / "kohya.safetensors", metadata=header)

        os.replace(temporary / "diffusers.safetensors", output_dir / DIFFUSERS_WEIGHT_NAME)
        os.replace(temporary / "kohya.safetensors", output_dir / KOHYA_WEIGHT_NAME)
    return output_dir / DIFFUSERS_WEIGHT_NAME, output_dir / KOHYA_WEIGHT_NAME


def generate_validation_images(
    base_model_dir, lora_path, prompt, *, seed=0, size=512, steps=25, guidance_scale=7.5,
    device=None,
):
    """(image without the LoRA, image with it): the same prompt, seed and settings."""
    import torch

    from generation.engine.pipelines import load_components

    device, dtype = torch_device(device)
    pipeline = load_components(base_model_dir, dtype).to(device)
    pipeline.set_progress_bar_config(disable=True)

    def draw():
        return pipeline(
            prompt,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=torch.Generator().manual_seed(seed),
        ).images[0]

    without_lora = draw()
    pipeline.load_lora_weights(str(lora_path))
    return without_lora, draw()
