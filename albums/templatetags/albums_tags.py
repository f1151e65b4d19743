"""URLs of image files for templates and the admin: {% image_url id %}, {% thumbnail_url id %}.

They take an image id (an Image, or an annotated id such as an album's cover_image_id), so
a grid of thumbnails costs no query per picture. The files are served by albums/files.py,
which checks that the caller may see the image.
"""

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def image_url(image):
    """The original file."""
    return reverse("image_file", args=[getattr(image, "pk", image)])


@register.simple_tag
def thumbnail_url(image):
    """The WebP thumbnail, 384 px on the long side."""
    return reverse("image_thumbnail", args=[getattr(image, "pk", image)])
