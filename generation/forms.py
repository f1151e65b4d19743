import base64
import binascii
import io
import json
import re

from django import forms

from .engine.params import FIELDS as PARAMETERS
from .models import ModelVersion
from .rules import SDXL_BUCKETS
from .validation import (
    CLIP_SKIP_DEFAULT,
    LORA_WEIGHT,
    MAX_LORAS,
    NUMBERS,
    SCHEDULERS,
    generation_defaults,
)

SIZE_PRESETS = [
    ("512x512", "512 × 512 (square)"),
    ("768x512", "768 × 512 (landscape)"),
    ("512x768", "512 × 768 (portrait)"),
    ("768x768", "768 × 768"),
    ("256x256", "256 × 256 (quick)"),
    ("64x64", "64 × 64 (demo model)"),
    # SDXL's aspect buckets (rules.SDXL_BUCKETS)
    *[(f"{w}x{h}", f"{w} × {h} (SDXL)") for w, h in SDXL_BUCKETS],
]

SIZE_FORMAT = re.compile(r"\d{1,5}x\d{1,5}")


def model_size(model, site_size):
    """The "WxH" a request with `model` and no size gets (validation.py: its family's
    default, else the site settings')."""
    default = model.size_rule()[0] if model is not None else None
    return f"{default[0]}x{default[1]}" if default else site_size


def usable_models(user, kind):
    """The active models of `kind` that `user`'s role may use: the choices the pages offer
    (ModelVersion.usable_by)."""
    return ModelVersion.objects.filter(kind=kind).active().usable_by_user(user)


def usable_messages(field, label):
    """A choice outside usable_models, refused as the API refuses it (ModelVersion.refusal)."""
    return {"invalid_choice": ModelVersion.refusal(field, "%(value)s", label)}


class LoraFields:
    """Pairs of fields, a LoRA and its weight (lora_1, weight_1, ...): a prompt set's five,
    and the generate page's rows, as many as sent (static/js/lora_rows.js adds and removes
    them; lora_rows). How many LoRAs a job may use, their weights and family are the rules'
    (generation.validation), judged as the API's list is: a sixth row gets their error."""

    ROW_NAME = re.compile(r"lora_(\d{1,3})")

    def add_lora_fields(self, user, chosen=(), numbers=None):
        loras = usable_models(user, ModelVersion.Kind.LORA)
        chosen = list(chosen)
        self.lora_numbers = list(numbers or range(1, MAX_LORAS + 1))
        for index, n in enumerate(self.lora_numbers):
            lora, weight = chosen[index] if index < len(chosen) else (None, 1.0)
            self.fields[f"lora_{n}"] = forms.ModelChoiceField(
                queryset=loras, required=False, empty_label="(no LoRA)", label=f"LoRA {n}",
                initial=lora, error_messages=usable_messages("loras", "LoRA"))
            self.fields[f"weight_{n}"] = forms.FloatField(
                required=False, initial=weight, label="weight",
                widget=forms.NumberInput(attrs={"step": "0.05", "min": LORA_WEIGHT[0],
                                                "max": LORA_WEIGHT[1]}))

    def add_lora_rows(self, user):
        """The rows the form was sent (or started with: ?lora_1=), else one empty row."""
        sent = self.data if self.is_bound else self.initial
        numbers = sorted({match[1] for key in sent if (match := self.ROW_NAME.fullmatch(key))},
                         key=int)
        self.add_lora_fields(user, numbers=numbers or [1])

    def lora_rows(self):
        return [(self[f"lora_{n}"], self[f"weight_{n}"]) for n in self.lora_numbers]

    def chosen_loras(self):
        """[(ModelVersion, weight)] of the rows with a LoRA (weight 1.0 when left empty)."""
        data = self.cleaned_data
        return [(data[f"lora_{n}"], 1.0 if data.get(f"weight_{n}") is None
                 else data[f"weight_{n}"])
                for n in self.lora_numbers if data.get(f"lora_{n}")]

    def lora_error_field(self):
        """The field that shows a rule's error about the LoRAs: the first row's."""
        return f"lora_{self.lora_numbers[0]}"


class GenerateForm(LoraFields, forms.Form):
    """The generate page. Its rules are generation.validation's, like the API's."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    negative_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    model = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), required=False,
                                   empty_label="Default model",
                                   error_messages=usable_messages("model", "base model"))
    size = forms.ChoiceField(choices=SIZE_PRESETS)  # width and height
    scheduler = forms.ChoiceField(choices=[(s, s) for s in SCHEDULERS])
    # The other numbers of the engine's GenerationParams, one field each (num_images: one
    # image a job on this page), their kinds from generation.validation's rules.
    NUMBERS_ASKED = ["steps", "guidance_scale", "seed", "clip_skip"]
    HELP = {"seed": "Empty: a random seed.",
            "clip_skip": "1: the text encoder's last layer; 2: the one before (A1111's)."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = usable_models(user, ModelVersion.Kind.BASE)
        self.fields["upscaler"].queryset = usable_models(user, ModelVersion.Kind.UPSCALER)
        for name in self.NUMBERS_ASKED:
            kind = forms.IntegerField if NUMBERS[name][0] is int else forms.FloatField
            self.fields[name] = kind(required=False, help_text=self.HELP.get(name, ""),
                                     label=name.replace("_scale", "").capitalize())
        defaults = generation_defaults()
        # Each model's default size (its family's: SDXL 1024, else the site settings'), the
        # default model's under ""; static/js/model_sizes.js picks it as the model changes.
        site_size = f"{defaults['width']}x{defaults['height']}"
        sizes = {str(model.pk): model_size(model, site_size)
                 for model in self.fields["model"].queryset}
        sizes[""] = model_size(ModelVersion.objects.default_base(), site_size)
        self.fields["model"].widget.attrs["data-sizes"] = json.dumps(sizes)
        size = sizes[""]
        if size not in dict(SIZE_PRESETS):
            self.fields["size"].choices = [(size, size), *SIZE_PRESETS]
        self.fields["size"].initial = size
        # A size of a picture remixed (?from_image=) or sent back: any WxH is offered,
        # the rules (validate_generation) judge it.
        asked = str(self.data.get("size") or self.initial.get("size") or "")
        if SIZE_FORMAT.fullmatch(asked) and asked not in dict(self.fields["size"].choices):
            self.fields["size"].choices = [(asked, asked.replace("x", " × ")),
                                           *self.fields["size"].choices]
        self.fields["clip_skip"].initial = CLIP_SKIP_DEFAULT
        self.fields["steps"].initial = defaults["steps"]
        self.fields["guidance_scale"].initial = defaults["guidance_scale"]
        self.fields["scheduler"].initial = defaults["scheduler"]
        self.fields["negative_prompt"].initial = defaults["negative_prompt"]
        self.add_lora_rows(user)

    # Image to image: the source (an image id; the view checks it may be seen), the mask the
    # editor drew (static/js/mask_editor.js: a PNG as a data: URL), and their settings.
    init_image = forms.IntegerField(required=False, widget=forms.HiddenInput)
    mask_data = forms.CharField(required=False, widget=forms.HiddenInput)
    strength = forms.FloatField(required=False, initial=0.75, label="Denoising strength",
                                widget=forms.NumberInput(attrs={"step": "0.05", "min": 0,
                                                                "max": 1}))
    mask_blur = forms.IntegerField(required=False, initial=4, label="Mask blur")
    keep_unmasked = forms.BooleanField(required=False, initial=True,
                                       label="Keep unmasked pixels")
    outpaint_left = forms.IntegerField(required=False, initial=0, label="Add left")
    outpaint_right = forms.IntegerField(required=False, initial=0, label="Add right")
    outpaint_up = forms.IntegerField(required=False, initial=0, label="Add up")
    outpaint_down = forms.IntegerField(required=False, initial=0, label="Add down")
    hires_scale = forms.ChoiceField(required=False, label="Hires fix",
                                    choices=[("", "off"), ("1.5", "1.5×"), ("2", "2×")])
    hires_strength = forms.FloatField(required=False, initial=0.5, label="Hires strength")
    # What makes the picture larger (the hires fix, a starting image drawn larger: the
    # image pages' "Upscale"): a registered upscaler model, or the plain resampler.
    upscaler = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), required=False,
                                      empty_label="Lanczos (plain resampler)",
                                      label="Upscaler",
                                      error_messages=usable_messages("upscaler", "upscaler"))

    def clean_mask_data(self):
        """The drawn mask as an uploaded file (validate_generation checks its bytes)."""
        value = self.cleaned_data.get("mask_data") or ""
        if not value:
            return None
        prefix = "data:image/png;base64,"
        if not value.startswith(prefix):
            raise forms.ValidationError("The mask must be a PNG drawn by the mask editor.")
        try:
            data = base64.b64decode(value[len(prefix):], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise forms.ValidationError("The mask is not valid base64 PNG data.") from exc
        upload = io.BytesIO(data)
        upload.name = "mask.png"
        return upload

    def image_rows(self):
        """The image to image fields the page shows once a source is chosen."""
        return [self[name] for name in ("strength", "mask_blur", "keep_unmasked",
                                        "outpaint_left", "outpaint_right", "outpaint_up",
                                        "outpaint_down")]

    def generation_params(self):
        """The parameters for submit_job, which checks them by generation.validation."""
        data = self.cleaned_data
        width, _, height = (data.get("size") or "x").partition("x")
        params = {key: data.get(key) for key in [*PARAMETERS, "model", "init_image",
                                                 "upscaler"]
                  if key in self.fields}
        params.update(width=width, height=height, mask=data.get("mask_data"))
        params["loras"] = self.chosen_loras()
        return params

    def error_lines(self):
        """Every error of the form as one line each, the field's label first."""
        return [message if field == "__all__" else f"{self[field].label}: {message}"
                for field, messages in self.errors.items() for message in messages]

    def add_generation_errors(self, error):
        """Show the errors of a refused submission on the fields they name."""
        for field, messages in error.message_dict.items():
            target = {"width": "size", "height": "size", "loras": self.lora_error_field(),
                      "mask": "mask_data", "hires": "hires_scale",
                      "outpaint": "outpaint_left"}.get(field, field)
            self.add_error(target if target in self.fields else None, messages)


class BatchForm(forms.Form):
    theme = forms.CharField(required=False, max_length=200)
    steps = forms.IntegerField(required=False)
    seed = forms.IntegerField(required=False, help_text="Empty: one random seed for the batch.")

    def overrides(self):
        return {key: value for key, value in self.cleaned_data.items()
                if key != "theme" and value is not None}


class SetLorasForm(LoraFields, forms.Form):
    """A prompt set's LoRAs on its page (editors); PromptSet.set_loras checks them."""

    def __init__(self, *args, prompt_set, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_lora_fields(user, prompt_set.lora_choices())

    def add_rule_errors(self, error):
        self.add_error(self.lora_error_field() if "loras" in error.message_dict else None,
                       [message for messages in error.message_dict.values()
                        for message in messages])
