"""The captioning API: start a run over an album, and read a run's progress.

    POST /api/albums/{id}/caption/   -> 202 {"id", "status", "total", "done", ..., "status_url"}
    GET  /api/caption-runs/{id}/     -> 200 the same

Starting needs Album.can_curate (the owner or a curator); an album the caller may not see
answers 404, one they see but may not curate 403. A run is visible to those who may curate
its album (the album page polls it with the session). With IMAGINEER_CAPTION_MODEL unset
starting answers 503.
"""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.response import Response

from core.api import errors, example

from . import api_examples as examples
from .captioning import CaptioningUnavailable
from .models import Album, CaptionRun
from .tasks import start_caption_run


class CaptioningOff(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "captioning_off"


class CaptionRunSerializer(serializers.ModelSerializer):
    summary = serializers.CharField(read_only=True, help_text="One line for people.")
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = CaptionRun
        fields = ["id", "album", "status", "total", "done", "empty", "error", "summary",
                  "created_at", "started_at", "finished_at", "status_url"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, run):
        return self.context["request"].build_absolute_uri(reverse("api_caption_run", args=[run.pk]))


@extend_schema(
    summary="Caption an album's images automatically",
    description="Starts a caption run over the album (or answers the one already queued or "
                "running); poll `status_url`.",
    tags=["albums"],
    request=None,
    responses={
        202: CaptionRunSerializer,
        **errors(401, 403, 404, 503, missing="Album", examples={
            403: {"detail": "Only the album's owner or a curator may caption it."},
            503: examples.CAPTIONING_OFF,
        }),
    },
    parameters=[OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER,
                                 response=[202], description="The run's `status_url`.")],
    examples=[example("Run", examples.CAPTION_RUN, status_codes=[202])],
)
@api_view(["POST"])
def start_album_captioning(request, pk):
    album = get_object_or_404(Album.objects.visible_to(request.user), pk=pk)
    if not album.can_curate(request.user):
        raise PermissionDenied("Only the album's owner or a curator may caption it.")
    try:
        run = start_caption_run(album, by=request.user)
    except CaptioningUnavailable as exc:
        raise CaptioningOff(str(exc)) from exc
    data = CaptionRunSerializer(run, context={"request": request}).data
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["status_url"]})


@extend_schema(
    summary="Get a caption run",
    tags=["albums"],
    responses={200: CaptionRunSerializer, **errors(401, 404, missing="CaptionRun")},
    examples=[example("Run", {**examples.CAPTION_RUN, "status": "succeeded", "done": 12,
                              "summary": "Done: captioned 12 of 12 images.",
                              "started_at": "2026-11-26T07:10:02.631002Z",
                              "finished_at": "2026-11-26T07:10:09.204550Z"})],
)
@api_view(["GET"])
def caption_run(request, pk):
    run = get_object_or_404(CaptionRun.objects.visible_to(request.user), pk=pk)
    return Response(CaptionRunSerializer(run, context={"request": request}).data)
