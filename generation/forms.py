import re

from django import forms

from .engine.params import FIELDS as PARAMETERS
from .models import ModelVersion
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
]

SIZE_FORMAT = re.compile(r"\d{1,5}x\d{1,5}")


class LoraFields:
    """MAX_LORAS pairs of fields, a LoRA and its weight (lora_1, weight_1, ...): the
    generate page's and a prompt set's."""

    def add_lora_fields(self, chosen=()):
        loras = ModelVersion.objects.loras().active()
        chosen = list(chosen)
        for n in range(1, MAX_LORAS + 1):
            lora, weight = chosen[n - 1] if n <= len(chosen) else (None, 1.0)
            self.fields[f"lora_{n}"] = forms.ModelChoiceField(
                queryset=loras, required=False, empty_label="(no LoRA)", label=f"LoRA {n}",
                initial=lora)
            self.fields[f"weight_{n}"] = forms.FloatField(
                required=False, initial=weight, label="weight",
                widget=forms.NumberInput(attrs={"step": "0.05", "min": LORA_WEIGHT[0],
                                                "max": LORA_WEIGHT[1]}))

    def lora_rows(self):
        return [(self[f"lora_{n}"], self[f"weight_{n}"]) for n in range(1, MAX_LORAS + 1)]

    def chosen_loras(self):
        """[(ModelVersion, weight)] of the rows with a LoRA (weight 1.0 when left empty)."""
        data = self.cleaned_data
        return [(data[f"lora_{n}"], 1.0 if data.get(f"weight_{n}") is None
                 else data[f"weight_{n}"])
                for n in range(1, MAX_LORAS + 1) if data.get(f"lora_{n}")]


class GenerateForm(LoraFields, forms.Form):
    """The generate page. Its rules are generation.validation's, like the API's."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    negative_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    model = forms.ModelChoiceField(queryset=ModelVersion.objects.bases().active(),
                                   required=False, empty_label="Default model")
    size = forms.ChoiceField(choices=SIZE_PRESETS)  # width and height
    scheduler = forms.ChoiceField(choices=[(s, s) for s in SCHEDULERS])
    # The other numbers of the engine's GenerationParams, one field each (num_images: one
    # image a job on this page), their kinds from generation.validation's rules.
    NUMBERS_ASKED = ["steps", "guidance_scale", "seed", "clip_skip"]
    HELP = {"seed": "Empty: a random seed.",
            "clip_skip": "1: the text encoder's last layer; 2: the one before (A1111's)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.NUMBERS_ASKED:
            kind = forms.IntegerField if NUMBERS[name][0] is int else forms.FloatField
            self.fields[name] = kind(required=False, help_text=self.HELP.get(name, ""),
                                     label=name.replace("_scale", "").capitalize())
        defaults = generation_defaults()
        size = f"{defaults['width']}x{defaults['height']}"
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
        self.add_lora_fields()

    def generation_params(self):
        """The parameters for submit_job, which checks them by generation.validation."""
        data = self.cleaned_data
        width, _, height = (data.get("size") or "x").partition("x")
        params = {key: data.get(key) for key in [*PARAMETERS, "model"] if key in self.fields}
        params.update(width=width, height=height)
        params["loras"] = self.chosen_loras()
        return params

    def add_generation_errors(self, error):
        """Show the errors of a refused submission on the fields they name."""
        for field, messages in error.message_dict.items():
            target = {"width": "size", "height": "size", "loras": "lora_1"}.get(field, field)
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

    def __init__(self, *args, prompt_set, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_lora_fields(prompt_set.lora_choices())

    def add_rule_errors(self, error):
        self.add_error("lora_1" if "loras" in error.message_dict else None,
                       [message for messages in error.message_dict.values()
                        for message in messages])
