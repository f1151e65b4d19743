from django import forms
from django.core.exceptions import ValidationError

from generation.forms import usable_messages, usable_models
from generation.models import ModelVersion

from .validation import DEFAULTS, validate_training


class TrainForm(forms.Form):
    """"Train a LoRA from this album". Its rules are training.validation's, like the API's."""

    name = forms.CharField(max_length=200)
    base_model = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, empty_label="Default model",
        error_messages=usable_messages("base_model", "base model"))
    trigger_word = forms.CharField(required=False, max_length=100,
                                   help_text="A rare word that will call up what was learned.")
    steps = forms.IntegerField()
    rank = forms.IntegerField()
    alpha = forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}))
    learning_rate = forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}))
    resolution = forms.IntegerField(widget=forms.NumberInput(attrs={"step": 8}))
    batch_size = forms.IntegerField()
    gradient_accumulation = forms.IntegerField()
    seed = forms.IntegerField(required=False, help_text="Empty: a random seed.")
    checkpoint_every = forms.IntegerField(help_text="Steps between checkpoints; 0: none.")
    center_crop = forms.BooleanField(required=False)
    random_flip = forms.BooleanField(required=False)
    train_convolutions = forms.BooleanField(
        required=False, help_text="Also the ResNet convolutions: what a new shape needs.")
    validation_prompt = forms.CharField(
        required=False, max_length=500,
        help_text="Empty: the trigger word and the first image's caption.")

    def __init__(self, *args, album, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.album = album
        self.user = user
        for name, field in self.fields.items():
            if DEFAULTS.get(name) is not None:
                field.initial = DEFAULTS[name]
        self.fields["name"].initial = f"{album.name} LoRA"
        self.fields["base_model"].queryset = usable_models(user, ModelVersion.Kind.BASE)

    def clean(self):
        data = super().clean()
        params = {name: data.get(name) for name in self.fields}
        try:
            self.cleaned_training = validate_training({**params, "album": self.album},
                                                      user=self.user)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data
