"""URLs of image files for templates and the admin: {% image_url id %}, {% thumbnail_url id %}.

They take an image id (an Image, or an annotated id such as an album's cover_image_id), so
a grid of thumbnails costs no query per picture.
"""

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


def file_url(name, image):
    image_id = getattr(image, "pk", image)
    try:
        return reverse(name, args=[image_id])
    except NoReverseMatch:
        # INTERIM until the `albums` branch (albums/files.py, albums/urls.py: URL names
        # image_file and image_thumbnail) is merged: the same paths, written out. The lead
        # deletes this fallback when merging.
        suffix = "thumbnail/" if name == "image_thumbnail" else ""
        return f"/media/images/{image_id}/{suffix}"


@register.simple_tag
def image_url(image):
    """The original file, served by a view that checks the caller may see it."""
    return file_url("image_file", image)


@register.simple_tag
def thumbnail_url(image):
    """The WebP thumbnail, 384 px on the long side."""
    return file_url("image_thumbnail", image)
