"""Automatic captions: a transformers image-to-text model, loaded once per worker process.

No Django models here (as in generation/engine/): tasks.py loads the rows and the
pictures and calls `get_captioner(name).caption(picture)`.

The model is named by IMAGINEER_CAPTION_MODEL: a hub id (Salesforce/blip-image-captioning-
base, nlpconnect/vit-gpt2-image-captioning) or a directory written by save_pretrained that
holds the model, its image processor and its tokenizer. transformers 5 dropped the
"image-to-text" pipeline, so the auto classes are used directly: the same three calls
load BLIP, GIT and vision-encoder-decoder captioners.

`build_tiny_captioning_model(dir)` saves a captioner with random weights (a tiny ViT
encoder and GPT-2 decoder with a character-level tokenizer): the real code path without a
download, for tests and demos. Its captions are gibberish.
"""

import json
import threading
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
    def __init__(self):
        super().__init__(
            "Automatic captioning is off: set IMAGINEER_CAPTION_MODEL to a transformers "
            "image-to-text model (a hub id or a local directory)."
        )


class Captioner:
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
