"""The OpenAPI declarations of the images, albums and captioning API (api.py's views):
summaries, examples and the error answers of each operation. imagineer/urls.py imports it
with the views."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from core.api import NOT_FOUND_IN_REQUEST, document, errors, example

from . import api_examples as examples
from .api import (
    CAPTION_MAX_LENGTH,
    AlbumSerializer,
    AlbumViewSet,
    CaptionRunSerializer,
    CaptionRunViewSet,
    DatasetUploadSerializer,
    ImageIdsSerializer,
    ImageOrderSerializer,
    ImageSerializer,
    ImageUploadSerializer,
    ImageViewSet,
    ImportResultSerializer,
    ScrapeRunCreateSerializer,
    ScrapeRunSerializer,
    ScrapeRunViewSet,
    UploadedImageSerializer,
)

document(
    ImageViewSet,
    list=extend_schema(
        summary="List images",
        description="The images the caller may see, newest first (in the album's order "
                    "with `album`). Anonymous callers see public albums' images while the "
                    "public gallery is on.",
        responses={200: ImageSerializer(many=True), **errors(400, 401, 404, examples={
            400: {"nsfw": ["'maybe' is not a boolean: use true or false"]},
            404: {"detail": NOT_FOUND_IN_REQUEST, "album": ["No album with id 42."]}})},
        examples=[example("Image", examples.IMAGE)],
    ),
    retrieve=extend_schema(
        summary="Get an image",
        responses={200: ImageSerializer, **errors(401, 404, missing="Image")},
        examples=[example("Image", examples.IMAGE)],
    ),
    partial_update=extend_schema(
        summary="Caption an image or mark it NSFW",
        description="`caption` becomes the image's manual caption (the text its training "
                    "uses); `nsfw` flags it.",
        responses={200: ImageSerializer, **errors(400, 401, 403, 404, missing="Image", examples={
            400: {"caption": [f"Ensure this field has no more than {CAPTION_MAX_LENGTH} "
                              "characters."]}})},
        examples=[example("New caption", examples.IMAGE_CHANGE, request=True),
                  example("Image", examples.IMAGE)],
    ),
    destroy=extend_schema(
        summary="Delete an image",
        description="Removes the image, its file and its thumbnail, and takes it out of "
                    "every album.",
        responses={204: None, **errors(401, 403, 404, missing="Image")},
    ),
    create=extend_schema(
        summary="Upload images",
        description="Every file is checked first: if any is refused, the whole request is "
                    "(each bad file named with its reason) and nothing is stored. A file "
                    "whose bytes you stored before answers that image of yours, `duplicate: "
                    "true`; bytes only somebody else stored make a new image of yours, as any "
                    "new bytes do.",
        request={"multipart/form-data": ImageUploadSerializer},
        responses={201: UploadedImageSerializer(many=True),
                   **errors(400, 401, 403, 413, 429, examples={400: examples.UPLOAD_REFUSED})},
        examples=[example("Stored", examples.UPLOADED)],
    ),
)

document(
    AlbumViewSet,
    list=extend_schema(
        summary="List albums",
        description="The albums the caller may see: their own, public ones, and for editors "
                    "and admins every album.",
        responses={200: AlbumSerializer(many=True), **errors(401)},
        examples=[example("Album", examples.ALBUM)],
    ),
    create=extend_schema(
        summary="Create an album",
        responses={201: AlbumSerializer, **errors(400, 401, 403)},
        examples=[example("New album", examples.ALBUM_CREATE, request=True),
                  example("Album", {**examples.ALBUM, "image_count": 0,
                                    "cover_thumbnail_url": None})],
    ),
    retrieve=extend_schema(
        summary="Get an album",
        responses={200: AlbumSerializer, **errors(401, 404, missing="Album")},
        examples=[example("Album", examples.ALBUM)],
    ),
    partial_update=extend_schema(
        summary="Change an album",
        description="`cover` must be one of the album's images.",
        responses={200: AlbumSerializer, **errors(400, 401, 403, 404, missing="Album", examples={
            400: {"cover": ["Incorrect type. Expected pk value, received str."]}})},
        examples=[example("Make it public", {"visibility": "public"}, request=True),
                  example("Album", {**examples.ALBUM, "visibility": "public"})],
    ),
    destroy=extend_schema(
        summary="Delete an album",
        description="Its images stay.",
        responses={204: None, **errors(401, 403, 404, missing="Album")},
    ),
    images=extend_schema(
        summary="Add or remove images",
        description="POST appends the images, in the order given, that the album lacks; "
                    "DELETE takes them out (the images stay). Answers the album.",
        request=ImageIdsSerializer,
        responses={200: AlbumSerializer, **errors(400, 401, 403, 404, missing="Album", examples={
            400: {"image_ids": ["Send a list of integer image ids."]},
            404: examples.NO_SUCH_IMAGES})},
        examples=[example("Images", examples.IMAGE_IDS, request=True),
                  example("Album", examples.ALBUM)],
    ),
    order=extend_schema(
        summary="Reorder the images",
        description="These images first, in this order; the others after them. Each id once.",
        request=ImageOrderSerializer,
        responses={200: AlbumSerializer, **errors(400, 401, 403, 404, missing="Album", examples={
            400: {"image_ids": ["repeated ids [42]"]},
            404: {"detail": NOT_FOUND_IN_REQUEST, "image_ids": ["ids not in this album [42]"]}})},
        examples=[example("Order", {"image_ids": [7, 3, 1]}, request=True),
                  example("Album", examples.ALBUM)],
    ),
    export=extend_schema(
        summary="Download the album as a zip dataset",
        description="Each image with its caption in a .txt file of the same name, and "
                    "`metadata.jsonl` (the layout Hugging Face datasets and kohya read).",
        responses={(200, "application/zip"): OpenApiTypes.BINARY,
                   **errors(401, 404, missing="Album")},
    ),
    import_dataset=extend_schema(
        summary="Import a dataset",
        description="A zip dataset (as export makes) or loose images and .txt captions. "
                    "Refused whole (400) when any entry is, with nothing stored.",
        request={"multipart/form-data": DatasetUploadSerializer},
        responses={201: ImportResultSerializer, **errors(
            400, 401, 403, 404, 413, 429, missing="Album",
            examples={400: examples.UPLOAD_REFUSED})},
        examples=[example("Imported", examples.IMPORTED)],
    ),
    caption=extend_schema(
        summary="Caption an album's images automatically",
        description="Starts a caption run over the album (or answers the one already queued "
                    "or running); poll `status_url`. Only the album's owner or a curator may.",
        request=None,
        responses={
            202: CaptionRunSerializer,
            **errors(401, 403, 404, 429, 503, missing="Album",
                     examples={503: examples.CAPTIONING_OFF}),
        },
        parameters=[OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER,
                                     response=[202], description="The run's `status_url`.")],
        examples=[example("Run", examples.CAPTION_RUN, status_codes=[202])],
    ),
)

document(
    CaptionRunViewSet,
    retrieve=extend_schema(
    summary="Get a caption run",
    tags=["albums"],
    responses={200: CaptionRunSerializer, **errors(401, 404, missing="CaptionRun")},
    examples=[example("Run", {**examples.CAPTION_RUN, "status": "succeeded", "done": 12,
                              "summary": "Done: captioned 12 of 12 images.",
                              "started_at": "2026-11-26T07:10:02.631002Z",
                              "finished_at": "2026-11-26T07:10:09.204550Z"})],
),
)

document(
    ScrapeRunViewSet,
    list=extend_schema(
        summary="List your scrape runs",
        responses={200: ScrapeRunSerializer(many=True), **errors(401)},
        examples=[example("Scrape run", examples.SCRAPE_RUN)],
    ),
    retrieve=extend_schema(
        summary="Get a scrape run's progress",
        description="Pages visited, images found and kept, refusals counted by reason "
                    "(`refused`) and the last ones named (`refusals`).",
        responses={200: ScrapeRunSerializer, **errors(401, 404, missing="ScrapeRun")},
        examples=[example("Scrape run", examples.SCRAPE_RUN)],
    ),
    create=extend_schema(
        summary="Scrape web pages into an album",
        description="Editors and admins. Queues a run that visits `start_url` and the pages "
                    "it links to, up to `depth` links away (0-3; on the same host when "
                    "`same_site`), and stores up to `max_images` (1-1000) of their images "
                    "of at least `min_width` x `min_height` in `album` (yours) or a new "
                    "album named `album_name`. Every image is checked like an upload; "
                    "robots.txt is obeyed; private addresses are refused.",
        request=ScrapeRunCreateSerializer,
        responses={201: ScrapeRunSerializer, **errors(400, 401, 403, examples={
            400: {"depth": ["A whole number from 0 to 3; got 7."]}})},
        examples=[example("Scrape a gallery", examples.SCRAPE_REQUEST, request=True),
                  example("Scrape run", examples.SCRAPE_RUN)],
    ),
    cancel=extend_schema(
        summary="Cancel a scrape run",
        request=None,
        responses={200: ScrapeRunSerializer, **errors(401, 403, 404, missing="ScrapeRun")},
        examples=[example("Scrape run", examples.SCRAPE_RUN)],
    ),
)
