"""The query filters of the images list (/api/images/): core.filters' rules, the models'
querysets (a caption is ImageQuerySet.captioned's, an album one the caller may see) and
search.py's search."""

import django_filters
from rest_framework.exceptions import ValidationError

from core.api import NO_SUCH_ROW
from core.filters import BooleanFilter, IdFilter, choice_filter

from .models import Album, Image
from .search import WINDOW, search


class ImageFilter(django_filters.FilterSet):
    album = IdFilter(method="in_album", label="Only this album's images, in its order.")
    source = choice_filter(Image.Source.values)
    nsfw = BooleanFilter()
    has_caption = BooleanFilter(method="with_caption")
    created_by = IdFilter(field_name="created_by_id", label="A user id.")
    search = django_filters.CharFilter(
        method="with_words",
        label="Words in the prompt or the caption, all of them; the last word, and a word "
              "ending in *, is the start of one, as one types (\"lighthouse dus\" finds "
              "\"a lighthouse at dusk\"). The best matches first, then the newest, among "
              f"the newest {WINDOW} matches the caller may see.")

    class Meta:
        model = Image
        fields = []

    def in_album(self, images, name, album_id):
        if not Album.objects.visible_to(self.request.user).filter(pk=album_id).exists():
            raise ValidationError({"album": [f"No album with id {album_id}."]}, code=NO_SUCH_ROW)
        return images.filter(album_entries__album_id=album_id).order_by(
            "album_entries__position", "album_entries__id")

    def with_caption(self, images, name, flag):
        return images.captioned(flag)

    def with_words(self, images, name, words):
        words = words.strip()
        if not words:
            return images
        return search(images, words)
