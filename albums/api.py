"""The images and albums API: /api/images/ and /api/albums/.

Who sees what is decided by the models' `visible_to` querysets (see models.py): anything
else answers 404, so another user's private album is indistinguishable from a missing
one. Writing needs the role's model permission (accounts/roles.py) and, for one object,
its `can_curate(user)`: a visible album you may not change answers 403.
"""

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from accounts.models import NsfwPreference, nsfw_mode
from core.api import (
    NO_SUCH_ROW,
    ActionPermission,
    FileOfTypes,
    JsonTypes,
    ReadPlan,
    RejectUnknownFields,
    check_json_types,
    check_known_fields,
    integer_param,
    router,
)
from core.filters import ID_RANGE, FilterBackend, is_id

from .archive import ArchiveRejected, album_export_name, export_album, import_dataset
from .captioning import CaptioningUnavailable
from .filters import ImageFilter
from .ingest import ImageRejected, UploadRejected, store_uploads
from .models import Album, CaptionRun, Image, Label, ScrapeRun
from .scrape import start_scrape, validate_scrape
from .tasks import start_caption_run

CAPTION_MAX_LENGTH = Label.MAX_LENGTH
IMAGE_TYPES = "image/png, image/jpeg, image/webp"  # what ingest.py stores


class RolePermission(ActionPermission):
    """Reads: signed-in users, and anyone while the public gallery is on (the querysets
    narrow what they see). Writes: the view's `action_permissions` for the action, then
    `can_curate` on the object."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS and settings.IMAGINEER_PUBLIC_GALLERY:
            return True
        return super().has_permission(request, view)

    def has_object_permission(self, request, view, obj):
        return request.method in SAFE_METHODS or obj.can_curate(request.user)


class IgnoreAcceptHeader(DefaultContentNegotiation):
    """For file downloads: answer with the first renderer whatever Accept asks for."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FileUrls:
    """Absolute URLs of the view that serves an image's original and thumbnail, for one
    request: reverse() and the scheme and host are worked out once, for a stand-in id, and
    only the id changes from image to image (a page of 50 images asked for 200 reverses).
    The same strings as reversing each id: an id is digits, which neither reverse() nor
    build_absolute_uri() quotes."""

    STAND_IN = 987654321987  # an id no URL prefix holds; each image's replaces it

    def __init__(self, request):
        self.templates = []
        for name in ("image_file", "image_thumbnail"):
            path = reverse(name, args=[self.STAND_IN])
            url = request.build_absolute_uri(path) if request else path
            before, _, after = url.rpartition(str(self.STAND_IN))
            self.templates.append((before, after))

    def __call__(self, image_id):
        """(original, thumbnail) of the image `image_id`."""
        (file, file_end), (thumbnail, thumbnail_end) = self.templates
        return f"{file}{int(image_id)}{file_end}", f"{thumbnail}{int(image_id)}{thumbnail_end}"


# Serializer mixin: the `url` and `thumbnail_url` method fields of an image, from one
# FileUrls for the whole answer (kept on the root serializer: one request's). A comment,
# not a docstring: drf-spectacular describes a serializer by the first docstring among its
# classes.
class ImageUrls:
    def file_urls(self, image_id):
        root = self.root
        urls = getattr(root, "_file_urls", None)
        if urls is None:
            urls = root._file_urls = FileUrls(self.context.get("request"))
        return urls(image_id)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image):
        return self.file_urls(image.pk)[0]

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, image):
        return self.file_urls(image.pk)[1]


def image_ids_param(data):
    """`image_ids` from a request body: a list of integer ids."""
    ids = data.get("image_ids") if hasattr(data, "get") else None
    if not isinstance(ids, list) or not all(is_id(i) for i in ids):
        raise ValidationError({"image_ids": ["Send a list of integer image ids."]})
    return ids


# Images


class ImageSerializer(ImageUrls, ReadPlan, JsonTypes, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    caption = serializers.CharField(
        required=False, allow_blank=True, max_length=CAPTION_MAX_LENGTH, trim_whitespace=True
    )

    class Meta:
        model = Image
        fields = [
            "id", "url", "thumbnail_url", "width", "height", "size_bytes", "format",
            "sha256", "source", "prompt", "params", "nsfw", "nsfw_score", "caption",
            "created_by", "created_at",
        ]
        read_only_fields = [name for name in fields if name not in ("nsfw", "caption")]

    def update(self, image, validated_data):
        if "nsfw" in validated_data:  # a curator's word, final even when unchanged
            image.set_nsfw(validated_data["nsfw"])
        if "caption" in validated_data and validated_data["caption"] != image.caption:
            image.set_caption(validated_data["caption"], by=self.context["request"].user)
        return image


class UploadedImageSerializer(ImageUrls, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    duplicate = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "width", "height", "sha256", "url", "thumbnail_url", "duplicate"]

    def get_duplicate(self, image) -> bool:
        """The caller stored these bytes before (never: somebody else did)."""
        return not self.context["created"][image.pk]


def uploaded_response(request, stored, status_code, **extra):
    """The answer to an upload or import: per image, what was stored and whether it was new."""
    created = {}
    for image, was_created in stored:
        created[image.pk] = created.get(image.pk, False) or was_created
    serializer = UploadedImageSerializer(
        [image for image, _ in stored], many=True,
        context={"request": request, "created": created},
    )
    if extra:
        return Response({"images": serializer.data, **extra}, status=status_code)
    return Response(serializer.data, status=status_code)


def curated_album(request, album_id, field="album"):
    """The album `album_id` if the caller may add images to it; a 400 on `field` if not."""
    album = Album.objects.visible_to(request.user).filter(pk=album_id).first()
    if album is None or not album.can_curate(request.user):
        raise ValidationError({field: [f"No album with id {album_id} that you may add to."]},
                              code=NO_SUCH_ROW)
    return album


# POST /api/images/ as the schema shows it: the view reads the files itself.
class ImageUploadSerializer(RejectUnknownFields, serializers.Serializer):
    file = serializers.ListField(
        child=FileOfTypes(IMAGE_TYPES, filename="file.png"),
        help_text="One or more PNG, JPEG or WebP images: repeat the field for each.",
        min_length=1,
    )
    album = serializers.IntegerField(
        required=False, help_text="Add them to this album (one you may add to).", **ID_RANGE,
    )


class ImageViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Images the caller may see.

    List filters: album (id; ordered by position in it), source, nsfw, has_caption,
    created_by (user id), search (in prompts and captions); cursor and page_size.
    NSFW images are left out of the list (filters and search included) for a caller whose
    `nsfw_preference` is hide (/api/me/); an image asked for by its id is answered whatever
    the preference. `nsfw_score` is the classifier's (IMAGINEER_NSFW_MODEL; null: not
    scored).
    PATCH sets `caption` (a new manual caption label) or `nsfw` (a curator's flag: the
    classifier no longer changes it). DELETE removes the row and both files.

    POST (multipart): one or more `file` fields and an optional `album` id. Every file is
    checked first; if any is refused the whole request is refused (400, each bad file
    named with its reason) and nothing is stored. Otherwise all are stored in one
    transaction (files removed again if it fails) and added to the album. The answer, 201,
    lists per file: id, width, height, sha256, url, thumbnail_url and `duplicate` (the
    caller stored the same bytes before: that image of theirs is returned). Somebody else's
    image of the same bytes plays no part: the caller gets an image of their own, and the
    answer is the same as for bytes nobody had (albums/ingest.py).
    """

    serializer_class = ImageSerializer
    permission_classes = [RolePermission]
    filter_backends = [FilterBackend]
    filterset_class = ImageFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "create": ["albums.add_image"],
        "partial_update": ["albums.change_image"],
        "destroy": ["albums.delete_image"],
    }

    def get_queryset(self):
        images = Image.objects.visible_to(self.request.user).with_caption()
        if self.action == "list":  # an image asked for by its id is answered all the same
            images = images.shown_in_lists_to(self.request.user)
        return images

    def create(self, request):
        check_known_fields(request.data, ImageUploadSerializer().fields)
        files = request.FILES.getlist("file")
        if not files:
            raise ValidationError({"file": ["Send one or more images in the `file` field."]})
        album_id = request.data.get("album")
        album = None
        if album_id not in (None, ""):
            album = curated_album(request, integer_param(request.data, "album"))
        try:
            stored = store_uploads(files, by=request.user, album=album)
        except UploadRejected as exc:
            raise ValidationError({"file": exc.errors}) from exc
        return uploaded_response(request, stored, status.HTTP_201_CREATED)


# Albums


class AlbumSerializer(ImageUrls, JsonTypes, serializers.ModelSerializer):
    cover_thumbnail_url = serializers.SerializerMethodField()
    image_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Album
        fields = [
            "id", "name", "slug", "description", "owner", "visibility", "cover",
            "cover_thumbnail_url", "is_training_set", "image_count", "created_at",
            "updated_at",
        ]
        read_only_fields = ["slug", "owner", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The cover must be one of the album's own images.
        album = self.instance if isinstance(self.instance, Album) else None
        self.fields["cover"].queryset = (
            album.images.all() if album is not None else Image.objects.none()
        )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_cover_thumbnail_url(self, album):
        """The cover's thumbnail; none where the cover is flagged NSFW and the caller chose
        to hide such images (with_summary's `cover_nsfw`), as the album list page does."""
        cover_id = getattr(album, "cover_image_id", album.cover_id)
        request = self.context.get("request")
        if cover_id is None or (getattr(album, "cover_nsfw", False) and request is not None
                                and nsfw_mode(request.user) == NsfwPreference.HIDE):
            return None
        return self.file_urls(cover_id)[1]


class ImageIdsSerializer(serializers.Serializer):
    image_ids = serializers.ListField(child=serializers.IntegerField(**ID_RANGE))


class DistinctIdsField(serializers.ListField):
    """A list of image ids, each at most once: Album.reorder refuses a repeated id, and the
    schema says so (`uniqueItems`)."""

    openapi_rule = {"uniqueItems": True}


class ImageOrderSerializer(serializers.Serializer):
    image_ids = DistinctIdsField(child=serializers.IntegerField(**ID_RANGE))


# POST /api/albums/{id}/import/ as the schema shows it: the view reads the files itself.
class DatasetUploadSerializer(RejectUnknownFields, serializers.Serializer):
    file = serializers.ListField(
        child=FileOfTypes("application/zip, image/png, image/jpeg, image/webp",
                          filename="file.png"),  # a zip is known by its bytes
        help_text="A zip dataset, or images and their .txt captions: repeat the field.",
        min_length=1,
    )


class ImportResultSerializer(serializers.Serializer):
    images = UploadedImageSerializer(many=True)
    skipped = serializers.ListField(
        child=serializers.CharField(), help_text="Entries that are neither images nor captions.",
    )


class CaptioningOff(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "captioning_off"


class CaptionRunSerializer(serializers.ModelSerializer):
    summary = serializers.CharField(read_only=True, help_text="One line for people.")
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = CaptionRun
        fields = ["id", "album", "status", "total", "done", "empty", "failed", "error", "summary",
                  "created_at", "started_at", "finished_at", "status_url"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, run):
        return self.context["request"].build_absolute_uri(
            reverse("captionrun-detail", args=[run.pk]))


class AlbumViewSet(viewsets.ModelViewSet):
    """Albums the caller may see; the owner and curators change them.

    POST/DELETE {id}/images/ {"image_ids": [...]}: add (idempotent, appended in the order
    given) or remove images. PATCH {id}/order/ {"image_ids": [...]}: those images first,
    in that order, the others after. GET {id}/export/: a zip dataset. POST {id}/import/:
    a zip dataset or loose images and .txt captions in `file` fields (see archive.py).
    """

    serializer_class = AlbumSerializer
    permission_classes = [RolePermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "create": ["albums.add_album"],
        "partial_update": ["albums.change_album"],
        "destroy": ["albums.delete_album"],
        "images": ["albums.change_album"],
        "order": ["albums.change_album"],
        "import_dataset": ["albums.change_album", "albums.add_image"],
    }

    def get_queryset(self):
        return Album.objects.visible_to(self.request.user).with_summary()

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_update(self, serializer):
        serializer.save()
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def summary(self, album):
        album = self.get_queryset().get(pk=album.pk)
        return Response(self.get_serializer(album).data)

    @action(detail=True, methods=["post", "delete"])
    def images(self, request, pk=None):
        album = self.get_object()
        ids = image_ids_param(request.data)
        if request.method == "DELETE":
            album.remove_images(ids)
            return self.summary(album)
        found = Image.objects.visible_to(request.user).in_bulk(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationError({"image_ids": [f"No images with ids {missing}."]},
                                  code=NO_SUCH_ROW)
        album.add_images([found[i] for i in ids], by=request.user)
        return self.summary(album)

    @action(detail=True, methods=["patch"])
    def order(self, request, pk=None):
        album = self.get_object()
        album.reorder(image_ids_param(request.data))
        return self.summary(album)

    @action(detail=True, methods=["get"], content_negotiation_class=IgnoreAcceptHeader)
    def export(self, request, pk=None):
        album = self.get_object()
        response = StreamingHttpResponse(export_album(album), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{album_export_name(album)}"'
        return response

    @action(detail=True, methods=["post"])
    def caption(self, request, pk=None):
        """Caption the album's uncaptioned images (the owner or a curator): 202 and the run."""
        album = self.get_object()
        try:
            run = start_caption_run(album, by=request.user)
        except CaptioningUnavailable as exc:
            raise CaptioningOff(str(exc)) from exc
        data = CaptionRunSerializer(run, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": data["status_url"]})

    @action(
        detail=True, methods=["post"], url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_dataset(self, request, pk=None):
        album = self.get_object()
        check_known_fields(request.data, DatasetUploadSerializer().fields)
        files = request.FILES.getlist("file")
        if not files:
            raise ValidationError({"file": ["Send a zip file or images in the `file` field."]})
        try:
            imported, skipped = import_dataset(album, files, by=request.user)
        except (ArchiveRejected, ImageRejected) as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        stored = [(item.image, item.created) for item in imported]
        return uploaded_response(request, stored, status.HTTP_201_CREATED, skipped=skipped)


class CaptionRunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A caption run's progress, for those who may curate its album (the album page polls
    it with the session); runs started in the admin: curators only."""

    serializer_class = CaptionRunSerializer
    permission_classes = [ActionPermission]

    def get_queryset(self):
        return CaptionRun.objects.visible_to(self.request.user)


class ScrapeRunSerializer(serializers.ModelSerializer):
    summary = serializers.CharField(read_only=True, help_text="One line for people.")
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ScrapeRun
        fields = ["id", "start_url", "depth", "max_images", "same_site", "min_width",
                  "min_height", "caption", "album", "status", "progress", "pages_visited",
                  "images_found", "images_kept", "refused", "refusals", "caption_run",
                  "error", "summary", "attempts", "created_at", "started_at", "finished_at",
                  "status_url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_status_url(self, run):
        return self.context["request"].build_absolute_uri(
            reverse("scraperun-detail", args=[run.pk]))


class ScrapeRunCreateSerializer(RejectUnknownFields, serializers.Serializer):
    """The fields of a new scrape run (the schema's; albums.scrape.validate_scrape rules,
    after the JSON types: check_json_types)."""

    # An album, or a new album's name (with more than spaces), not both.
    openapi_rule = {"oneOf": [{"required": ["album"]}, {"required": ["album_name"]}]}

    start_url = serializers.URLField(max_length=2000)
    depth = serializers.IntegerField(min_value=0, max_value=3, default=1)
    max_images = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    same_site = serializers.BooleanField(default=True)
    min_width = serializers.IntegerField(min_value=0, max_value=10000, default=0)
    min_height = serializers.IntegerField(min_value=0, max_value=10000, default=0)
    album = serializers.IntegerField(required=False, help_text="An album of yours...")
    album_name = serializers.RegexField(r"\S", required=False, max_length=200,
                                        help_text="...or the name of a new album.")
    caption = serializers.BooleanField(default=False, help_text="Caption the album's "
                                       "uncaptioned images when the scrape ends.")


class ScrapeRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                       viewsets.GenericViewSet):
    """Scrape runs: web pages into an album (albums/scrape.py). Editors and admins start
    them; each sees only their own runs."""

    serializer_class = ScrapeRunSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"create": ["albums.add_scraperun"],
                          "cancel": ["albums.change_scraperun"]}

    def get_queryset(self):
        return ScrapeRun.objects.visible_to(self.request.user).select_related("album")

    def create(self, request, *args, **kwargs):
        check_json_types(ScrapeRunCreateSerializer().fields, request.data)
        run = start_scrape(request.user, validate_scrape(request.data, request.user))
        answer = self.get_serializer(run).data
        return Response(answer, status=status.HTTP_201_CREATED,
                        headers={"Location": answer["status_url"]})

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued run, or stop a running one after its current page or image."""
        run = self.get_object()
        run.cancel()
        run.refresh_from_db()
        return Response(self.get_serializer(run).data)


router.register("images", ImageViewSet, basename="image")
router.register("albums", AlbumViewSet, basename="album")
router.register("caption-runs", CaptionRunViewSet, basename="captionrun")
router.register("scrape-runs", ScrapeRunViewSet, basename="scraperun")
