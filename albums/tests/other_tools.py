"""PNGs as other tools write them: Automatic1111, ComfyUI, InvokeAI and Fooocus, each
with its own metadata chunks, written here (no file is downloaded)."""

import io
import json

from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

PROMPT = "a lighthouse at dusk, oil painting"
NEGATIVE = "blurry, lowres"


def png_with_text(chunks, size=(64, 48), color=(10, 120, 200)):
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    PILImage.new("RGB", size, color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def a1111_png(model_hash="0123456789", sampler="DPM++ 2M Karras", **size):
    text = (f"{PROMPT}\nNegative prompt: {NEGATIVE}\n"
            f"Steps: 28, Sampler: {sampler}, CFG scale: 6.5, Seed: 1234567, Size: 512x768, "
            f"Model hash: {model_hash}, Model: dreamy_v2, Clip skip: 2, Version: v1.10.1")
    return png_with_text({"parameters": text}, **size)


def comfyui_png(ckpt_name="sd_xl_base_1.0.safetensors", **size):
    prompt = {
        "3": {"class_type": "KSampler",
              "inputs": {"seed": 42, "steps": 30, "cfg": 7.0, "sampler_name": "euler_ancestral",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": ["6", 0], "negative": ["7", 0],
                         "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 1024, "height": 832, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["10", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["10", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI",
                                                    "images": ["8", 0]}},
        "10": {"class_type": "CLIPSetLastLayer",
               "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}},
    }
    # [link id, from node, from slot, to node, to slot, type]
    links = [[1, 4, 0, 3, 0, "MODEL"], [2, 6, 0, 3, 1, "CONDITIONING"],
             [3, 7, 0, 3, 2, "CONDITIONING"], [4, 5, 0, 3, 3, "LATENT"],
             [5, 4, 1, 10, 0, "CLIP"], [6, 10, 0, 6, 0, "CLIP"], [7, 10, 0, 7, 0, "CLIP"],
             [8, 3, 0, 8, 0, "LATENT"], [9, 4, 2, 8, 1, "VAE"], [10, 8, 0, 9, 0, "IMAGE"]]
    workflow = {"last_node_id": 10, "last_link_id": 10, "nodes": [], "links": links,
                "version": 0.4}
    return png_with_text({"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)},
                         **size)


def invokeai_png(**size):
    metadata = {
        "generation_mode": "txt2img", "positive_prompt": PROMPT, "negative_prompt": NEGATIVE,
        "width": 768, "height": 512, "seed": 99, "rand_device": "cpu", "cfg_scale": 8.0,
        "steps": 25, "scheduler": "euler_a",
        "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1",
                  "model_type": "main"},
        "app_version": "3.4.0",
    }
    return png_with_text({"invokeai_metadata": json.dumps(metadata)}, **size)


def fooocus_png(model_hash="abcdef0123", **size):
    parameters = {
        "prompt": PROMPT, "negative_prompt": NEGATIVE, "prompt_expansion": "",
        "styles": "['Fooocus V2']", "performance": "Speed", "resolution": "(1152, 896)",
        "guidance_scale": 4.0, "sharpness": 2.0, "adm_guidance": "(1.5, 0.8, 0.3)",
        "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": model_hash,
        "refiner_model": "None", "refiner_switch": 0.5, "sampler": "dpmpp_2m_sde_gpu",
        "scheduler": "karras", "seed": "31337", "steps": 30, "version": "Fooocus v2.3.1",
    }
    return png_with_text({"parameters": json.dumps(parameters),
                          "fooocus_scheme": "fooocus"}, **size)
