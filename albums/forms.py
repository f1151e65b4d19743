from django import forms

from .models import Album, Label


class AlbumChoiceForm(forms.Form):
    """Pick one of the albums the user may curate (image page, admin bulk actions)."""

    album = forms.ModelChoiceField(queryset=Album.objects.none(), empty_label=None)

    def __init__(self, *args, albums, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["album"].queryset = albums


class CaptionForm(forms.Form):
    text = forms.CharField(
        label="Caption", max_length=Label.MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )


class AlbumForm(forms.ModelForm):
    class Meta:
        model = Album
        fields = ["name", "description", "visibility"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """One or more files in one field; cleans to a list of uploaded files."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget", MultipleImageInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        )
        # albums.ingest refuses empty files, naming them, as it does on every other path.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        items = list(data) if isinstance(data, list | tuple) else [data]
        cleaned = []
        for item in items or [None]:  # None: the "required" error
            cleaned.append(super().clean(item, initial))
        return cleaned


class UploadForm(forms.Form):
    """Images are checked and stored by albums.ingest (the rules live there)."""

    file = MultipleImageField(label="Images")
