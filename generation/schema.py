"""The OpenAPI declarations of the generation API (api.py's views): summaries, examples and
the error answers of each operation. imagineer/urls.py imports it with the views."""

from drf_spectacular.utils import OpenApiParameter, extend_schema

from core.api import CONFLICT_IN_REQUEST, document, errors, example

from . import api_examples as examples
from .api import (
                               BatchCreateSerializer,
                               BatchSerializer,
                               BatchViewSet,
                               CsvUploadSerializer,
                               JobCreateSerializer,
                               JobSerializer,
                               JobViewSet,
                               ModelVersionSerializer,
                               ModelVersionViewSet,
                               PromptSetItemsSerializer,
                               PromptSetSerializer,
                               PromptSetViewSet,
                               SiteSettingsSerializer,
                               SiteSettingsViewSet,
)

# What a submission may answer beyond 201: the limits of generation.limits.
SUBMIT_ERRORS = (400, 401, 403, 413, 429, 503)

LIMIT_EXAMPLES = {429: examples.RATE_LIMITED, 503: examples.QUEUE_FULL}

RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429, 503],
                               description="Seconds to wait before trying again.")

REMIX = extend_schema(
    summary="Run a job again",
    description="A new job with the same seed, model, LoRAs and parameters (`remix_of` "
                "names the first). Limits apply as to any submission.",
    request=None,
    parameters=[RETRY_AFTER],
    responses={201: JobSerializer, **errors(*SUBMIT_ERRORS, 404, 409, missing="Job", examples={
        **LIMIT_EXAMPLES, 400: {"model": ["model must be an active base model; demo 1 is not."]},
        409: {"detail": CONFLICT_IN_REQUEST,
              "model": ["model must be an active base model; model 1 is retired."]}})},
    examples=[example("Job", examples.JOB_REMIX)],
)

SLUG_TAKEN = {"detail": CONFLICT_IN_REQUEST,
              "slug": ["prompt set with this slug already exists."]}

SET_CHANGE = extend_schema(
    summary="Change a prompt set",
    responses={200: PromptSetSerializer, **errors(
        400, 401, 403, 404, 409, missing="PromptSet", examples={
            400: {"name": ["This field may not be blank."]},
            409: {"detail": CONFLICT_IN_REQUEST, **examples.PROMPT_SET_REFUSED}})},
    examples=[example("Template", {"prompt_template": "{subject} on a {place}"}, request=True),
              example("Set", examples.PROMPT_SET)],
)

MODEL_CHANGE = extend_schema(
    summary="Change a model",
    description="Its name, description, version, trigger words, and whether it is active. "
                "`kind`, `source`, `file` and `family` are set when it is registered: sent "
                "with another value they are refused (409).",
    responses={200: ModelVersionSerializer, **errors(
        400, 401, 403, 404, 409, missing="ModelVersion", examples={409: {
            "detail": CONFLICT_IN_REQUEST,
            "kind": ["Fixed once registered: register a new model version instead."]}})},
    examples=[example("Retire", {"is_active": False}, request=True),
              example("Model", {**examples.LORA, "is_active": False})],
)


document(
    JobViewSet,
    list=extend_schema(
        summary="List jobs",
        description="Viewers see their own jobs; editors and admins everyone's. Newest first.",
        responses={200: JobSerializer(many=True), **errors(400, 401, examples={
            400: {"batch": ["'x' is not an integer id"]}})},
        examples=[example("Job", examples.JOB)],
    ),
    create=extend_schema(
        summary="Generate images (submit a job)",
        description="Only `prompt` is required; every other parameter defaults from the site "
                    "settings. The job is queued: poll it until `status` is `succeeded` "
                    "(`images` then lists the results), `failed` (`error` says why) or "
                    "`cancelled`. Image to image: `init_image` (an image id you can see), "
                    "`strength`; inpainting: `mask` (an image id, or a PNG uploaded as "
                    "multipart, of init_image's size), `mask_blur`, `keep_unmasked`; "
                    "`outpaint` (pixels per side); `hires` (text to image: upscale and draw "
                    "again); `upscaler` (a registered upscaler model's id: what makes the "
                    "picture larger, else Lanczos). A mask of another size, an upscale past "
                    "the size limit: 400 naming the field, nothing queued; an image you "
                    "cannot see: 404 naming it.",
        request=JobCreateSerializer,
        parameters=[RETRY_AFTER],
        responses={201: JobSerializer, **errors(*SUBMIT_ERRORS, examples={
            **LIMIT_EXAMPLES, 400: examples.JOB_REFUSED})},
        examples=[example("Prompt", examples.JOB_CREATE, request=True),
                  example("With a LoRA", examples.JOB_WITH_LORA, request=True),
                  example("Image to image", examples.JOB_IMG2IMG, request=True),
                  example("Inpainting", examples.JOB_INPAINT, request=True),
                  example("Outpainting", examples.JOB_OUTPAINT, request=True),
                  example("Hires fix", examples.JOB_HIRES, request=True),
                  example("Upscaling with a model", examples.JOB_UPSCALE, request=True),
                  example("Job", examples.JOB_QUEUED)],
    ),
    retrieve=extend_schema(
        summary="Get a job",
        description="Its status, progress (0 to 1) and, once it succeeded, its images.",
        responses={200: JobSerializer, **errors(401, 404, missing="Job")},
        examples=[example("Job", examples.JOB)],
    ),
    cancel=extend_schema(
        summary="Cancel a job",
        description="A queued job never runs; a running one stops before its next step. A "
                    "finished job stays as it is.",
        request=None,
        responses={200: JobSerializer, **errors(401, 404, missing="Job")},
        examples=[example("Job", {**examples.JOB_QUEUED, "status": "cancelled",
                                  "finished_at": "2026-11-26T07:03:11.020331Z"})],
    ),
    retry=REMIX,
    remix=REMIX,
)

document(
    BatchViewSet,
    list=extend_schema(
        summary="List batches",
        description="Viewers see their own batches; editors and admins everyone's.",
        responses={200: BatchSerializer(many=True), **errors(401)},
        examples=[example("Batch", examples.BATCH)],
    ),
    create=extend_schema(
        summary="Start a batch from a prompt set",
        description="One job per item of the set (its prompt made from the set's template, "
                    "the item and the `theme`), one seed for all unless given; the images "
                    "are collected into a new album (`album`). Generation parameters "
                    "override the set's.",
        request=BatchCreateSerializer,
        parameters=[RETRY_AFTER],
        responses={201: BatchSerializer, **errors(*SUBMIT_ERRORS, examples={
            **LIMIT_EXAMPLES, 400: {"set": ["the prompt set seaside has no items."]}})},
        examples=[example("Set and theme", examples.BATCH_CREATE, request=True),
                  example("Batch", examples.BATCH_QUEUED)],
    ),
    retrieve=extend_schema(
        summary="Get a batch",
        responses={200: BatchSerializer, **errors(401, 404, missing="Batch")},
        examples=[example("Batch", examples.BATCH)],
    ),
    cancel=extend_schema(
        summary="Cancel a batch",
        description="Its queued jobs never run; running ones stop before their next step.",
        request=None,
        responses={200: BatchSerializer, **errors(401, 403, 404, missing="Batch")},
        examples=[example("Batch", {**examples.BATCH_QUEUED, "status": "cancelled",
                                    "finished_at": "2026-11-26T07:04:08.902141Z"})],
    ),
)

document(
    PromptSetViewSet,
    list=extend_schema(
        summary="List prompt sets",
        responses={200: PromptSetSerializer(many=True), **errors(401)},
        examples=[example("Set", examples.PROMPT_SET)],
    ),
    create=extend_schema(
        summary="Create a prompt set",
        description="`prompt_template` names the items' columns in braces, e.g. "
                    "`{subject} on a {place}`; upload the items with the items action.",
        responses={201: PromptSetSerializer, **errors(400, 401, 403, 409,
                                                      examples={409: SLUG_TAKEN})},
        examples=[example("Set", examples.PROMPT_SET_CREATE, request=True),
                  example("Created", {**examples.PROMPT_SET, "items": []})],
    ),
    retrieve=extend_schema(
        summary="Get a prompt set",
        responses={200: PromptSetSerializer, **errors(401, 404, missing="PromptSet")},
        examples=[example("Set", examples.PROMPT_SET)],
    ),
    update=SET_CHANGE,
    partial_update=SET_CHANGE,
    destroy=extend_schema(
        summary="Delete a prompt set",
        description="A set that batches were started from cannot be deleted (409).",
        responses={204: None, **errors(401, 403, 404, 409, missing="PromptSet", examples={
            409: {"detail": "Cannot delete it: it is still used by 2 batches."}})},
    ),
    items=extend_schema(
        summary="Upload a prompt set's items",
        request={"multipart/form-data": CsvUploadSerializer},
        responses={201: PromptSetItemsSerializer, **errors(
            400, 401, 403, 404, 409, missing="PromptSet", examples={
                400: {"file": ["the CSV file must be UTF-8 text."]},
                409: {"detail": CONFLICT_IN_REQUEST, "prompt_template": [
                    "prompt_template names columns the items lack: place."]}})},
        examples=[example("Imported", {"imported": 2, **examples.PROMPT_SET})],
    ),
)

document(
    ModelVersionViewSet,
    list=extend_schema(
        summary="List models",
        description="Base models, LoRAs and upscalers; inactive ones only for editors and "
                    "admins.",
        responses={200: ModelVersionSerializer(many=True), **errors(400, 401, examples={
            400: {"kind": ["'lorra' is not one of base, lora, upscaler"]}})},
        examples=[example("Base model", examples.MODEL), example("LoRA", examples.LORA)],
    ),
    create=extend_schema(
        summary="Register a model",
        description="A base model by hub id, local diffusers folder or single-file "
                    "checkpoint (`source`), or by uploading its .safetensors `file` "
                    "(multipart); a LoRA by `source` or `file`. A single-file checkpoint's "
                    "family is read from its keys (SD 1.x, SD 2.x, SDXL); a file of another "
                    "kind is refused naming it (docs/models.md). A LoRA is checked: a "
                    "readable safetensors file whose layers fit its family. An upscaler "
                    "(kind `upscaler`): an ESRGAN-family .pth or .safetensors file "
                    "(RRDBNet, SRVGGNetCompact), by local `source` or `file`; its "
                    "architecture and scale are read from its keys.",
        responses={201: ModelVersionSerializer, **errors(400, 401, 403, 413, 429, examples={
            400: examples.MODEL_REFUSED})},
        examples=[example("Hub id", examples.MODEL_CREATE, request=True),
                  example("Model", {**examples.MODEL, "id": 3, "name": "SD 1.5",
                                    "source": examples.MODEL_CREATE["source"],
                                    "is_default": False})],
    ),
    retrieve=extend_schema(
        summary="Get a model",
        responses={200: ModelVersionSerializer, **errors(401, 404, missing="ModelVersion")},
        examples=[example("LoRA", examples.LORA)],
    ),
    update=MODEL_CHANGE,
    partial_update=MODEL_CHANGE,
    destroy=extend_schema(
        summary="Delete a model",
        description="A model that jobs, prompt sets or training runs use cannot be deleted "
                    "(409): retire it instead (`is_active: false`).",
        responses={204: None, **errors(401, 403, 404, 409, missing="ModelVersion", examples={
            409: {"detail": "Cannot delete it: it is still used by 12 jobs, 1 training run."}})},
    ),
    make_default=extend_schema(
        summary="Make a base model the default",
        request=None,
        responses={200: ModelVersionSerializer, **errors(
            401, 403, 404, 409, missing="ModelVersion",
            examples={409: {"detail": CONFLICT_IN_REQUEST,
                            "is_default": ["Only a base model can be the default."]}})},
        examples=[example("Model", examples.MODEL)],
    ),
)

document(
    SiteSettingsViewSet,
    retrieve=extend_schema(
        operation_id="config_retrieve",
        summary="The site settings in force: generation defaults and limits",
        tags=["config"],
        responses={200: SiteSettingsSerializer, **errors(401)},
        examples=[example("Site settings", examples.SITE_SETTINGS)],
    ),
    partial_update=extend_schema(
        operation_id="config_partial_update",
        summary="Change site settings (admins)",
        description="Send only the fields to change. Nothing is saved when a field is "
                    "unknown or out of range.",
        tags=["config"],
        responses={200: SiteSettingsSerializer, **errors(400, 401, 403, examples={
            400: {"default_steps": ["default_steps must be between 1 and 150; got 500."]}})},
        examples=[
            example("Fewer active jobs per user, more steps by default",
                    {"max_active_jobs": 5, "default_steps": 30}, request=True),
            example("Site settings", examples.SITE_SETTINGS),
        ],
    ),
)
