"""The generation API: jobs, batches, prompt sets, the model registry and the site
settings (/api/config/)."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from albums.api import file_urls
from core.api import (
    ActionPermission,
    RejectUnknownFields,
    choice_param,
    errors,
    example,
    integer_param,
    router,
)

from . import api_examples as examples
from .models import Batch, Job, ModelVersion, PromptSet, PromptSetItem, SiteSettings, Status
from .submit import remix_job, submit_batch, submit_job
from .validation import LORA_WEIGHT, SCHEDULERS, validate_generation

# What a submission may answer beyond 201: the limits of generation.limits.
SUBMIT_ERRORS = (400, 401, 403, 429, 503)
LIMIT_EXAMPLES = {429: examples.RATE_LIMITED, 503: examples.QUEUE_FULL}
RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429, 503],
                               description="Seconds to wait before trying again.")


# Jobs


# The active models only: a retired one is as unknown as a missing id, so neither an error
# nor the browsable API's form names it to those who may not see it (viewers).
class LoraChoiceSerializer(serializers.Serializer):
    id = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.loras().active())
    weight = serializers.FloatField(default=1.0, min_value=LORA_WEIGHT[0],
                                    max_value=LORA_WEIGHT[1])


class GenerationParamsSerializer(RejectUnknownFields, serializers.Serializer):
    """The optional generation parameters shared by jobs and batches. Names as in
    diffusers; what is left out defaults from the site settings. The ranges are checked
    by generation.validation, the one place for them."""

    negative_prompt = serializers.CharField(required=False, allow_blank=True)
    model = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.bases().active(),
                                               required=False, allow_null=True)
    loras = LoraChoiceSerializer(many=True, required=False)
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    steps = serializers.IntegerField(required=False)
    guidance_scale = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False, allow_null=True)
    scheduler = serializers.ChoiceField(choices=SCHEDULERS, required=False)
    num_images = serializers.IntegerField(required=False)

    @staticmethod
    def pop_loras(data):
        """The chosen LoRAs as [(ModelVersion, weight)], or None when none were sent."""
        if "loras" not in data:
            return None
        return [(choice["id"], choice["weight"]) for choice in data.pop("loras")]


class JobCreateSerializer(GenerationParamsSerializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def validate(self, data):
        data = dict(data)
        loras = self.pop_loras(data) or []
        return validate_generation(data, loras=loras)


class JobImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image):
        return file_urls(self.context.get("request"), image.pk)[0]

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, image):
        return file_urls(self.context.get("request"), image.pk)[1]


class JobLoraSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="lora_id")
    name = serializers.CharField(source="lora.name")
    weight = serializers.FloatField()


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    loras = JobLoraSerializer(source="joblora_set", many=True)
    images = JobImageSerializer(source="result_images", many=True)

    class Meta:
        model = Job
        fields = ["id", "status", "progress", "error", "owner", "batch", "prompt",
                  "negative_prompt", "model", "loras", "width", "height", "steps",
                  "guidance_scale", "seed", "scheduler", "num_images", "images",
                  "queued_at", "started_at", "finished_at", "worker", "remix_of"]
        read_only_fields = fields


REMIX = extend_schema(
    summary="Run a job again",
    description="A new job with the same seed, model, LoRAs and parameters (`remix_of` "
                "names the first). Limits apply as to any submission.",
    request=None,
    parameters=[RETRY_AFTER],
    responses={201: JobSerializer, **errors(*SUBMIT_ERRORS, 404, missing="Job", examples={
        **LIMIT_EXAMPLES, 400: {"model": ["model must be an active base model; demo 1 is not."]}})},
    examples=[example("Job", examples.JOB_REMIX)],
)


@extend_schema_view(
    list=extend_schema(
        summary="List jobs",
        description="Viewers see their own jobs; editors and admins everyone's. Newest first.",
        parameters=[
            OpenApiParameter("status", str, enum=Status.values),
            OpenApiParameter("batch", int, description="Only this batch's jobs."),
            OpenApiParameter("owner", int, description="Only this user's jobs (a user id)."),
        ],
        responses={200: JobSerializer(many=True), **errors(400, 401, examples={
            400: {"batch": ["'x' is not an integer id"]}})},
        examples=[example("Job", examples.JOB)],
    ),
    create=extend_schema(
        summary="Generate images (submit a job)",
        description="Only `prompt` is required; every other parameter defaults from the site "
                    "settings. The job is queued: poll it until `status` is `succeeded` "
                    "(`images` then lists the results), `failed` (`error` says why) or "
                    "`cancelled`.",
        request=JobCreateSerializer,
        parameters=[RETRY_AFTER],
        responses={201: JobSerializer, **errors(*SUBMIT_ERRORS, examples={
            **LIMIT_EXAMPLES, 400: examples.JOB_REFUSED})},
        examples=[example("Prompt", examples.JOB_CREATE, request=True),
                  example("With a LoRA", examples.JOB_WITH_LORA, request=True),
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
class JobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Viewers see and cancel their own jobs; editors and admins see all.
    Another user's job answers 404."""

    queryset = Job.objects.none()  # the model, for the schema; get_queryset() picks the rows
    permission_classes = [ActionPermission]
    action_permissions = {"create": ["generation.add_job"], "retry": ["generation.add_job"],
                          "remix": ["generation.add_job"]}

    def get_queryset(self):
        jobs = (Job.objects.visible_to(self.request.user)
                .select_related("owner", "model")
                .prefetch_related("images", "joblora_set__lora"))
        if self.action != "list":
            return jobs
        params = self.request.query_params
        if (status_filter := choice_param(params, "status", Status.values)) is not None:
            jobs = jobs.filter(status=status_filter)
        if (batch := integer_param(params, "batch")) is not None:
            jobs = jobs.filter(batch_id=batch)
        if (owner := integer_param(params, "owner")) is not None:
            jobs = jobs.filter(owner_id=owner)
        return jobs

    def get_serializer_class(self):
        return JobCreateSerializer if self.action == "create" else JobSerializer

    def create(self, request, *args, **kwargs):
        serializer = JobCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        job = submit_job(request.user, serializer.validated_data)
        return Response(JobSerializer(job, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        job.cancel()
        job.refresh_from_db()
        if job.batch_id:
            job.batch.refresh_status()
        return Response(JobSerializer(job, context={"request": request}).data)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run the job again: same seed, model, LoRAs and parameters (a remix)."""
        job = remix_job(request.user, self.get_object())
        return Response(JobSerializer(job, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def remix(self, request, pk=None):
        return self.retry(request, pk)


# Batches


# What a prompt set's slug may be (SlugField): a path or a value of another shape names no
# set, and is not looked up (PostgreSQL cannot compare a text holding a NUL).
SLUG = "[-a-zA-Z0-9_]+"


class PromptSetSlugField(serializers.SlugRelatedField):
    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(SLUG, data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class BatchCreateSerializer(GenerationParamsSerializer):
    set = PromptSetSlugField(slug_field="slug", queryset=PromptSet.objects.all())
    theme = serializers.CharField(required=False, allow_blank=True, max_length=200)


class BatchSerializer(serializers.ModelSerializer):
    set = serializers.SlugRelatedField(source="prompt_set", slug_field="slug", read_only=True)
    owner = serializers.CharField(source="owner.username")
    progress = serializers.FloatField()

    class Meta:
        model = Batch
        fields = ["id", "set", "theme", "owner", "status", "progress", "total", "succeeded",
                  "failed", "album", "created_at", "finished_at"]
        read_only_fields = fields


@extend_schema_view(
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
class BatchViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Batch.objects.none()  # the model, for the schema; get_queryset() picks the rows
    permission_classes = [ActionPermission]
    # Like jobs and training runs, a batch is cancelled by its owner or by whoever sees
    # every job (the queryset): the batch page offers it so.
    action_permissions = {"create": ["generation.add_batch"]}

    def get_queryset(self):
        batches = Batch.objects.select_related("prompt_set", "owner")
        if not self.request.user.has_perm("generation.see_all_jobs"):
            batches = batches.filter(owner=self.request.user)
        return batches

    def get_serializer_class(self):
        return BatchCreateSerializer if self.action == "create" else BatchSerializer

    def create(self, request, *args, **kwargs):
        serializer = BatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        prompt_set, theme = data.pop("set"), data.pop("theme", "")
        loras = serializer.pop_loras(data)
        if loras is not None:
            data["loras"] = loras
        batch = submit_batch(request.user, prompt_set, theme=theme, overrides=data)
        return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        batch = self.get_object()
        batch.cancel()
        return Response(BatchSerializer(batch).data)


# Prompt sets


class PromptSetItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptSetItem
        fields = ["position", "values"]


class PromptSetSerializer(RejectUnknownFields, serializers.ModelSerializer):
    items = PromptSetItemSerializer(many=True, read_only=True)
    loras = serializers.SerializerMethodField()

    class Meta:
        model = PromptSet
        fields = ["id", "name", "slug", "description", "base_prompt", "prompt_template",
                  "style_suffix", "example_theme", "width", "height", "negative_prompt",
                  "loras", "items"]
        read_only_fields = ["id", "items"]
        extra_kwargs = {"slug": {"required": False}}

    @extend_schema_field(LoraChoiceSerializer(many=True))
    def get_loras(self, prompt_set):
        return [{"id": link.lora_id, "weight": link.weight}
                for link in prompt_set.promptsetlora_set.all()]

    def validate(self, data):
        instance = PromptSet(**{**self._current(), **data})
        instance.pk = self.instance.pk if self.instance else None
        instance.clean()
        return data

    def _current(self):
        if self.instance is None:
            return {}
        return {field: getattr(self.instance, field) for field in
                ["name", "slug", "prompt_template", "width", "height"]}


class PromptSetItemsSerializer(PromptSetSerializer):
    """The answer to an items upload: the set, and how many items the file held."""

    imported = serializers.IntegerField(read_only=True)

    class Meta(PromptSetSerializer.Meta):
        fields = ["imported", *PromptSetSerializer.Meta.fields]


class CsvUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV file of at most 1 MB: a header row naming "
                                           "the columns, then one item a row.")


SET_CHANGE = extend_schema(
    summary="Change a prompt set",
    responses={200: PromptSetSerializer, **errors(
        400, 401, 403, 404, missing="PromptSet", examples={400: examples.PROMPT_SET_REFUSED})},
    examples=[example("Template", {"prompt_template": "{subject} on a {place}"}, request=True),
              example("Set", examples.PROMPT_SET)],
)


@extend_schema_view(
    list=extend_schema(
        summary="List prompt sets",
        responses={200: PromptSetSerializer(many=True), **errors(401)},
        examples=[example("Set", examples.PROMPT_SET)],
    ),
    create=extend_schema(
        summary="Create a prompt set",
        description="`prompt_template` names the items' columns in braces, e.g. "
                    "`{subject} on a {place}`; upload the items with the items action.",
        responses={201: PromptSetSerializer, **errors(400, 401, 403)},
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
            400, 401, 403, 404, missing="PromptSet", examples={400: examples.PROMPT_SET_REFUSED})},
        examples=[example("Imported", {"imported": 2, **examples.PROMPT_SET})],
    ),
)
class PromptSetViewSet(viewsets.ModelViewSet):
    """Everyone signed in reads; editors create, change, delete and upload items."""

    serializer_class = PromptSetSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG  # any other path is no set: 404
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": ["generation.add_promptset"],
        "update": ["generation.change_promptset"],
        "partial_update": ["generation.change_promptset"],
        "destroy": ["generation.delete_promptset"],
        "items": ["generation.change_promptset"],
    }
    queryset = PromptSet.objects.prefetch_related("items", "promptsetlora_set")
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    @action(detail=True, methods=["post"])
    def items(self, request, slug=None):
        """Replace the set's items with the rows of an uploaded CSV (`file`)."""
        prompt_set = self.get_object()
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Upload a CSV file in the `file` field."]})
        if upload.size > 1_000_000:
            raise ValidationError({"file": ["The CSV file must be at most 1 MB."]})
        count = prompt_set.import_csv(upload.read())
        prompt_set = self.get_queryset().get(pk=prompt_set.pk)
        prompt_set.imported = count
        return Response(PromptSetItemsSerializer(prompt_set).data, status=status.HTTP_201_CREATED)


# The model registry


class ModelVersionSerializer(RejectUnknownFields, serializers.ModelSerializer):
    file = serializers.FileField(required=False, write_only=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "source", "file", "sha256", "size_bytes", "family",
                  "trigger_words", "version", "is_active", "is_default", "description",
                  "metrics", "created_at"]
        read_only_fields = ["id", "sha256", "size_bytes", "is_default", "metrics",
                            "created_at"]
        # Said outright: DRF reads a boolean left out of a form (the multipart upload of a
        # LoRA) as false, and a LoRA uploaded without `is_active` would be registered off.
        extra_kwargs = {"is_active": {"default": True}}

    def to_representation(self, model):
        """A local folder or file is a path on the server: shown to those who manage models
        (editors, admins), an empty `source` to others, as for an uploaded file."""
        data = super().to_representation(model)
        request = self.context.get("request")
        if (model.source_is_local and request is not None
                and not request.user.has_perm("generation.change_modelversion")):
            data["source"] = ""
        return data

    def validate(self, data):
        if self.instance is not None:
            # What registration checked stays: the model's rule, as in the admin (DRF turns
            # Django's ValidationError into field errors).
            self.instance.refuse_fixed_changes(data)
        if data.get("kind") == ModelVersion.Kind.BASE and data.get("file"):
            raise ValidationError({"file": ["Upload files for LoRAs; register base models "
                                            "by hub id or local path."]})
        current = self.instance.source if self.instance else ""  # PATCH may leave it out
        if not data.get("file") and not data.get("source", current):
            raise ValidationError({"source": ["Give a hub id or local path, or upload a "
                                              ".safetensors file."]})
        return data


MODEL_CHANGE = extend_schema(
    summary="Change a model",
    description="Its name, description, version, trigger words, and whether it is active. "
                "`kind`, `source`, `file` and `family` are set when it is registered: sent "
                "with another value they are refused (400).",
    responses={200: ModelVersionSerializer, **errors(
        400, 401, 403, 404, missing="ModelVersion", examples={400: {"kind": [
            "Fixed once registered: register a new model version instead."]}})},
    examples=[example("Retire", {"is_active": False}, request=True),
              example("Model", {**examples.LORA, "is_active": False})],
)


@extend_schema_view(
    list=extend_schema(
        summary="List models",
        description="Base models and LoRAs; inactive ones only for editors and admins.",
        parameters=[OpenApiParameter("kind", str, enum=ModelVersion.Kind.values)],
        responses={200: ModelVersionSerializer(many=True), **errors(400, 401, examples={
            400: {"kind": ["'lorra' is not one of base, lora"]}})},
        examples=[example("Base model", examples.MODEL), example("LoRA", examples.LORA)],
    ),
    create=extend_schema(
        summary="Register a model",
        description="A base model by hub id or local folder (`source`), or a LoRA by "
                    "`source` or by uploading its .safetensors `file` (multipart). A LoRA is "
                    "checked: a readable safetensors file whose layers fit its family.",
        responses={201: ModelVersionSerializer, **errors(400, 401, 403, examples={
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
            400, 401, 403, 404, missing="ModelVersion",
            examples={400: {"is_default": ["Only a base model can be the default."]}})},
        examples=[example("Model", examples.MODEL)],
    ),
)
class ModelVersionViewSet(viewsets.ModelViewSet):
    serializer_class = ModelVersionSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": ["generation.add_modelversion"],
        "update": ["generation.change_modelversion"],
        "partial_update": ["generation.change_modelversion"],
        "destroy": ["generation.delete_modelversion"],
        "make_default": ["generation.change_modelversion"],
    }
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        models = ModelVersion.objects.all()
        kind = choice_param(self.request.query_params, "kind", ModelVersion.Kind.values)
        if kind:
            models = models.filter(kind=kind)
        if not self.request.user.has_perm("generation.change_modelversion"):
            models = models.filter(is_active=True)
        return models

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        upload = data.pop("file", None)
        if upload is not None:
            model = ModelVersion.from_upload(upload, created_by=request.user, **data)
        else:
            model = ModelVersion.from_source(created_by=request.user, **data)
        model.register()
        return Response(ModelVersionSerializer(model).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], url_path="make-default")
    def make_default(self, request, pk=None):
        model = self.get_object()
        model.make_default()
        return Response(ModelVersionSerializer(model).data)


# Site settings


class SiteSettingsSerializer(RejectUnknownFields, serializers.ModelSerializer):
    """The generation defaults (what a request leaves out) and the limits. The rules are
    generation.validation's, through SiteSettings.clean."""

    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When an admin last saved them; null while they are the environment's.")

    class Meta:
        model = SiteSettings
        fields = [*SiteSettings.field_names(), "updated_at"]

    def validate(self, data):
        site = SiteSettings(**{**{name: getattr(self.instance, name)
                                  for name in SiteSettings.field_names()}, **data})
        site.clean()
        return {name: getattr(site, name) for name in data}


class SiteSettingsViewSet(viewsets.GenericViewSet):
    """/api/config/: everyone signed in reads the site settings; admins change them, and
    every web process and worker uses the change from its next request."""

    permission_classes = [ActionPermission]
    action_permissions = {"partial_update": ["generation.change_sitesettings"]}
    serializer_class = SiteSettingsSerializer

    @extend_schema(
        operation_id="config_retrieve",
        summary="The site settings in force: generation defaults and limits",
        tags=["config"],
        responses={200: SiteSettingsSerializer, **errors(401)},
        examples=[example("Site settings", examples.SITE_SETTINGS)],
    )
    def retrieve(self, request):
        return Response(SiteSettingsSerializer(SiteSettings.current()).data)

    @extend_schema(
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
    )
    def partial_update(self, request):
        serializer = SiteSettingsSerializer(SiteSettings.load(), data=request.data,
                                            partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


site_settings = SiteSettingsViewSet.as_view({"get": "retrieve", "patch": "partial_update"})


router.register("jobs", JobViewSet, basename="job")
router.register("batches", BatchViewSet, basename="batch")
router.register("sets", PromptSetViewSet, basename="promptset")
router.register("models", ModelVersionViewSet, basename="modelversion")
