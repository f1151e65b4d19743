"""Serving image files to those who may see them.

URLs carry the image id (`/media/images/<id>/`, `/media/images/<id>/thumbnail/`), never a
storage path. The caller is the session user or, for API clients, the token user; the
image must be in `Image.objects.visible_to(caller)`, else 404.

IMAGINEER_SENDFILE picks who sends the bytes:
- "" (default): Django streams them from default_storage (FileResponse), local or S3.
  With S3 the bytes pass through the web server rather than a redirect to a presigned
  URL: the bucket stays private, images stay same-origin (the CSP allows no other), and
  a URL never outlives the permission check that let it out.
- "nginx": an empty answer with `X-Accel-Redirect: IMAGINEER_SENDFILE_PREFIX + name`;
  nginx needs an internal location there aliased to the media root:
      location /protected-media/ { internal; alias /srv/imagineer/media/; }
- "apache": an empty answer with `X-Sendfile: <full path>` (mod_xsendfile).
Both sendfile modes need the local storage (settings.py refuses them with S3).
"""

from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .ingest import CONTENT_TYPES, EXTENSIONS
from .models import Image


def caller(request):
    """The session user, else the user of a valid API token, else the anonymous user."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        found = None
    return found[0] if found else request.user


@require_safe
def image_file(request, pk):
    image = get_object_or_404(Image.objects.visible_to(caller(request)), pk=pk)
    return send_file(
        image.file.name, CONTENT_TYPES[image.format], f"{image.pk}.{EXTENSIONS[image.format]}"
    )


@require_safe
def image_thumbnail(request, pk):
    image = get_object_or_404(Image.objects.visible_to(caller(request)), pk=pk)
    return send_file(image.thumbnail.name, "image/webp", f"{image.pk}-thumbnail.webp")


def send_file(name, content_type, download_name):
    mode = settings.IMAGINEER_SENDFILE
    if mode == "nginx":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.IMAGINEER_SENDFILE_PREFIX + quote(name)
    elif mode == "apache":
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = default_storage.path(name)
    else:
        try:
            response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
        except FileNotFoundError:
            raise Http404("The image file is missing.") from None
    response["Content-Disposition"] = f'inline; filename="{download_name}"'
    # Files never change under an id (the name is the content's hash); visibility can.
    response["Cache-Control"] = "private, max-age=86400"
    return response


def document_file_urls(result, generator, request, public):
    """drf-spectacular postprocessing hook: the two URLs above in the API's schema. They are
    Django views, not DRF's (they send bytes, not JSON), so the generator does not see them."""
    files = (
        ("/media/images/{id}/", "image_file", "Download an image", CONTENT_TYPES.values()),
        ("/media/images/{id}/thumbnail/", "image_thumbnail", "Download an image's thumbnail",
         ["image/webp"]),
    )
    for path, operation_id, summary, content_types in files:
        binary = {"schema": {"type": "string", "format": "binary"}}
        result["paths"][path] = {"get": {
            "operationId": operation_id,
            "summary": summary,
            "description": "The file's bytes (`Content-Disposition: inline`). The `url` and "
                           "`thumbnail_url` of an image in any answer point here.",
            "tags": ["images"],
            "parameters": [{"in": "path", "name": "id", "required": True,
                            "schema": {"type": "integer"}, "description": "The image's id."}],
            # Anonymous callers see the public albums' images while the public gallery is on.
            "security": [{"tokenAuth": []}, {"cookieAuth": []}, {}],
            "responses": {
                "200": {"description": "The file.",
                        "content": {content_type: binary for content_type in content_types}},
                "404": {"description": "No such image, or one the caller may not see (an HTML "
                                       "page: these are not DRF views)."},
            },
        }}
    return result
