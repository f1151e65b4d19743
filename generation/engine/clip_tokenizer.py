"""CLIP's tokenizer, built offline from the BPE merges that open-clip-torch ships.

Every Stable Diffusion family tokenizes with CLIP's BPE (SD 1.x with OpenAI's CLIP,
SD 2.x and SDXL's second encoder with OpenCLIP's: the same vocabulary, another padding).
diffusers would fetch `vocab.json` and `merges.txt` from the hub; nothing may come from
the hub here, so they are built from `bpe_simple_vocab_16e6.txt.gz`, the file OpenAI's
CLIP and open-clip-torch tokenize with, exactly as their SimpleTokenizer builds its
vocabulary: the 256 byte symbols, the same with the end-of-word mark, one token per merge
(the first 48,894 lines after the header), then the start and end tokens.
test_clip_tokenizer.py checks it gives CLIP's token ids on a set of prompts.

open-clip-torch is installed without its dependencies (Makefile, Dockerfile: they would
replace the pinned torch); only the file is read from it, the package is never imported.

No Django here.
"""

import gzip
import importlib.util
import json
from pathlib import Path

MERGES = 49152 - 256 - 2  # the merges CLIP's vocabulary holds
START, END = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77


def bpe_path() -> Path:
    """open-clip-torch's bpe_simple_vocab_16e6.txt.gz, found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "CLIP's BPE vocabulary comes from open-clip-torch, which is not installed: "
            "pip install --no-deps open-clip-torch (see the Makefile)")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's and CLIP's reversible map of the 256 bytes to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def vocabulary(source: Path | None = None) -> tuple[dict[str, int], list[str]]:
    """(vocab: token -> id, merges: "a b" lines) of CLIP's tokenizer."""
    lines = gzip.open(source or bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1:MERGES + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(symbol + "</w>" for symbol in symbols),
              *("".join(merge.split()) for merge in merges), START, END]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer(directory: str | Path, *, pad_token: str = END) -> Path:
    """Write a CLIPTokenizer folder (vocab.json, merges.txt, its config) to `directory`.

    pad_token: OpenAI's CLIP (SD 1.x, SDXL's first encoder) pads with the end token;
    OpenCLIP (SD 2.x, SDXL's second encoder) pads with "!", id 0."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = vocabulary()
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False),
                                          encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                          encoding="utf-8")
    special = {"bos_token": START, "eos_token": END, "unk_token": END, "pad_token": pad_token}
    (directory / "special_tokens_map.json").write_text(json.dumps(special))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        **special, "tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH,
        "do_lower_case": True, "errors": "replace", "add_prefix_space": False,
    }))
    return directory


def clean_prompt(text: str) -> str:
    """A prompt cleaned as CLIP cleans text before its BPE (ftfy's fixes, HTML entities
    unescaped twice, runs of white space made one space): what the CLIP text encoders
    were trained on. transformers' CLIPTokenizer skips this, so the engine cleans each
    prompt first; then the token ids are CLIP's (test_clip_tokenizer.py)."""
    import html
    import re

    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()
