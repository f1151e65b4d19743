"""Automatic captions: the backends that turn a picture into a one-line caption.

No Django models here (as in generation/engine/): tasks.py loads the rows and the
pictures, picks the backend from the settings (`IMAGINEER_CAPTION_BACKEND`) and calls
`captioner.caption(picture)`. Two backends:

- "local": a transformers image-to-text model, loaded once per worker process. It is named
  by IMAGINEER_CAPTION_MODEL: a hub id (Salesforce/blip-image-captioning-base,
  nlpconnect/vit-gpt2-image-captioning) or a directory written by save_pretrained that
  holds the model, its image processor and its tokenizer. transformers 5 dropped the
  "image-to-text" pipeline, so the auto classes are used directly: the same three calls
  load BLIP, GIT and vision-encoder-decoder captioners.
- "anthropic": a vision LLM through Anthropic's Messages API and the official `anthropic`
  package (`AnthropicCaptioner`). The picture is shrunk to `max_side` pixels on its long
  side and sent as a base64 JPEG (cost grows with pixels); 429 and 5xx answers are retried
  with exponential backoff by the package (`max_retries`, honouring retry-after). An image
  the API still refuses, or whose answer holds no text, raises `CaptionFailed`: that image
  stays uncaptioned and the run goes on with the next.

`build_tiny_captioning_model(dir)` saves a captioner with random weights (a tiny ViT
encoder and GPT-2 decoder with a character-level tokenizer): the real code path without a
download, for tests and demos. Its captions are gibberish.
"""

import base64
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path

_captioners = {}
_lock = threading.Lock()


def get_captioner(name):
    """The captioner for model `name`, loaded on first use and kept for the process."""
    if not name:
        raise CaptioningUnavailable()
    with _lock:
        if name not in _captioners:
            _captioners[name] = Captioner(name)
        return _captioners[name]


class CaptioningUnavailable(RuntimeError):
    def __init__(self, reason=None):
        super().__init__(reason or (
            "Automatic captioning is off: set IMAGINEER_CAPTION_MODEL to a transformers "
            "image-to-text model (a hub id or a local directory)."
        ))


class CaptionFailed(Exception):
    """This image could not be captioned (the API refused it, the answer held no caption):
    the image stays uncaptioned and the run goes on."""


class Captioner:
    """A transformers image-to-text model (the "local" backend)."""

    input_side = 384  # what common captioners take: the 384 px thumbnail is enough

    def __init__(self, name):
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.processor = AutoImageProcessor.from_pretrained(name)
        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModelForImageTextToText.from_pretrained(name).to(self.device).eval()

    def caption(self, picture):
        """The caption of a PIL image, whitespace collapsed; "" when the model says nothing."""
        import torch

        pixels = self.processor(images=picture.convert("RGB"), return_tensors="pt")
        with torch.inference_mode():
            ids = self.model.generate(
                pixel_values=pixels.pixel_values.to(self.device, self.model.dtype),
                max_new_tokens=40,
            )
        text = self.tokenizer.decode(ids[0], skip_special_tokens=True)
        return " ".join(text.split())


DEFAULT_PROMPT = (
    "Write a caption of this image for training an image generation model: the subject, "
    "then the style, then the medium (photograph, oil painting, 3D render...), then a few "
    "comma-separated tags, all in one line of plain text. Answer with the caption only."
)


@dataclass(frozen=True)
class AnthropicOptions:
    """What the "anthropic" backend needs; tasks.py fills it from the settings."""

    api_key: str
    model: str = "claude-haiku-4-5"
    prompt: str = DEFAULT_PROMPT
    max_side: int = 768
    max_tokens: int = 200
    max_retries: int = 4
    timeout: float = 60.0
    base_url: str | None = None  # None: the package's default (or ANTHROPIC_BASE_URL)


_anthropic_clients: dict = {}


def get_anthropic_captioner(options):
    """The captioner for `options`, its HTTP client made once and kept for the process."""
    with _lock:
        if options not in _anthropic_clients:
            _anthropic_clients[options] = AnthropicCaptioner(options)
        return _anthropic_clients[options]


class AnthropicCaptioner:
    """Captions through Anthropic's Messages API: one request per image."""

    def __init__(self, options):
        import anthropic

        self.options = options
        self.input_side = options.max_side
        self.client = anthropic.Anthropic(
            api_key=options.api_key, base_url=options.base_url or None,
            max_retries=options.max_retries, timeout=options.timeout,
        )

    def request(self, picture):
        """The Messages API request for `picture` (keyword arguments of messages.create)."""
        return {
            "model": self.options.model,
            "max_tokens": self.options.max_tokens,
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {
                    "type": "base64", "media_type": "image/jpeg",
                    "data": encode_jpeg(picture, self.options.max_side)}},
                {"type": "text", "text": self.options.prompt},
            ]}],
        }

    def caption(self, picture):
        """The caption of a PIL image, whitespace collapsed to one line; CaptionFailed
        when the API refuses after its retries or answers without text."""
        import anthropic

        try:
            message = self.client.messages.create(**self.request(picture))
        except anthropic.APIStatusError as exc:
            raise CaptionFailed(
                f"the Messages API answered {exc.status_code}: {api_message(exc)}") from exc
        except (anthropic.APIError, ValueError) as exc:  # connection, timeout, not JSON
            raise CaptionFailed(f"the Messages API failed: {exc.__class__.__name__}: {exc}") \
                from exc
        texts = [getattr(block, "text", None) for block in getattr(message, "content", None)
                 or [] if getattr(block, "type", None) == "text"]
        text = " ".join(" ".join(t.split()) for t in texts if isinstance(t, str)).strip()
        if not text:
            raise CaptionFailed("the Messages API answered without a caption "
                                f"(stop reason {getattr(message, 'stop_reason', None)!r})")
        return text


def api_message(exc):
    """The message of an API error's body ({"error": {"message": ...}}), else its text."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("message") or exc.message)[:500]


def encode_jpeg(picture, max_side):
    """The picture as base64 JPEG text, shrunk to `max_side` on its long side (never
    enlarged); transparency is flattened on white."""
    from PIL import Image as PILImage

    picture = picture.copy()
    picture.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
    if picture.mode in ("RGBA", "LA", "P"):
        picture = picture.convert("RGBA")
        flat = PILImage.new("RGB", picture.size, "white")
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# The tiny model's vocabulary: GPT-2's byte-level alphabet for printable ASCII ("Ġ" is the
# space), one token per character; merges.txt is empty, so BPE never merges.
_CHARS = ["\u0120"] + [chr(code) for code in range(33, 127)]
_END, _PAD = "<|endoftext|>", "<pad>"


def build_tiny_captioning_model(directory, seed=0):
    """Save a captioner with random weights (seeded) to `directory`; return the path."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2Tokenizer,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessorPil,
    )

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {char: index for index, char in enumerate(_CHARS)}
    vocab[_END] = len(vocab)
    vocab[_PAD] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = GPT2Tokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token=_PAD
    )
    end, pad = vocab[_END], vocab[_PAD]

    torch.manual_seed(seed)
    encoder = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=4, intermediate_size=64,
    )
    decoder = GPT2Config(
        vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=1, n_head=4,
        bos_token_id=end, eos_token_id=end, pad_token_id=pad,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = end, end, pad
    model = VisionEncoderDecoderModel(config=config)
    generation = model.generation_config
    generation.decoder_start_token_id, generation.eos_token_id = end, end
    generation.pad_token_id = pad
    generation.min_new_tokens = 4  # random weights could end at once; demos want words
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory
