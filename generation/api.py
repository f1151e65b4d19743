"""The generation API: jobs, batches, prompt sets, the model registry and the site
settings (/api/config/)."""

import re

from django.db import transaction
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from albums.api import ImageUrls
from core.api import (
    CONTENT_TYPES,
    FILENAME,
    ActionPermission,
    FileOfTypes,
    ReadPlan,
    RejectUnknownFields,
    router,
    with_rules,
)
from core.filters import ID_RANGE, FilterBackend

from .engine.params import FIELDS as PARAMETERS
from .filters import JobFilter, ModelVersionFilter
from .models import Batch, Job, ModelVersion, PromptSet, PromptSetItem, SiteSettings
from .rules import SOURCE_RULE, family_sizes_text, template_rule
from .submit import remix_job, submit_batch, submit_job
from .validation import (
    HIRES_SCALE,
    IMAGE_DEFAULTS,
    IMAGE_RULE,
    LORA_WEIGHT,
    NUMBERS,
    OUTPAINT,
    OUTPAINT_SIDES,
    PROMPT_MAX,
    SCHEDULERS,
    SIZE,
    SIZE_MULTIPLE,
    STRENGTH,
    openapi_rule,
    parameter_rule,
    site_settings_rules,
    text_rule,
    validate_lora_choices,
)

# Jobs


class UsableModelField(serializers.PrimaryKeyRelatedField):
    """The id of an active model of one kind that the caller's role may use
    (ModelVersion.usable_by). A retired model, one the caller may not use and a missing id
    are refused in the same words, naming the field and the rule, so neither an error nor
    the browsable API's form names a model to those who may not see it."""

    def __init__(self, kind, field, **kwargs):
        messages = {"does_not_exist": ModelVersion.refusal(field, "{pk_value}",
                                                           ModelVersion.kind_label(kind))}
        super().__init__(queryset=ModelVersion.objects.filter(kind=kind).active(),
                         error_messages=messages, **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        models = super().get_queryset()
        return models if request is None else models.usable_by_user(request.user)


class LoraChoiceSerializer(serializers.Serializer):
    id = UsableModelField(ModelVersion.Kind.LORA, "loras")
    weight = serializers.FloatField(default=1.0, min_value=LORA_WEIGHT[0],
                                    max_value=LORA_WEIGHT[1])


class GenerationParamsSerializer(RejectUnknownFields, serializers.Serializer):
    """The optional generation parameters shared by jobs and batches: the fields of the
    engine's GenerationParams (names as in diffusers), the model and the LoRAs. What is
    left out defaults from the site settings. generation.validation checks them, the one
    place for their rules, which the schema states (parameter_rule)."""

    model = UsableModelField(ModelVersion.Kind.BASE, "model", required=False,
                             allow_null=True)
    loras = LoraChoiceSerializer(many=True, required=False)

    def get_fields(self):
        fields = super().get_fields()
        for name in PARAMETERS:
            # prompt: a job's own field, not a batch's; image to image: a job's only.
            if name not in fields and name != "prompt" and name not in IMAGE_DEFAULTS:
                fields[name] = parameter_field(name)
        return fields

    @staticmethod
    def pop_loras(data):
        """The chosen LoRAs as [(ModelVersion, weight)], or None when none were sent."""
        if "loras" not in data:
            return None
        return [(choice["id"], choice["weight"]) for choice in data.pop("loras")]


def parameter_field(name):
    """The serializer field of the generation parameter `name`, from its rule."""
    if name in NUMBERS:
        kind = NUMBERS[name][0]
        field = (serializers.IntegerField if kind is int else serializers.FloatField)(
            required=False, allow_null=name == "seed")
        field.openapi_rule = parameter_rule(name)
        if name in ("width", "height"):
            field.openapi_rule["description"] = (
                "Within the base model's family's range, which the server checks too "
                f"({family_sizes_text()}); left out: the family's default, else the site "
                "settings'.")
        return field
    if name == "scheduler":
        return serializers.ChoiceField(choices=SCHEDULERS, required=False)
    field = serializers.CharField(required=False, allow_blank=True)  # negative_prompt
    field.openapi_rule = text_rule(PROMPT_MAX)
    return field


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "format": "binary"}]})
class ImageOrUploadField(serializers.Field):
    """An image's id, or (multipart) an uploaded file: the mask."""

    openapi_rule = {CONTENT_TYPES: "image/png", FILENAME: "mask.png"}

    def to_internal_value(self, data):
        if hasattr(data, "read"):
            return data
        if isinstance(data, bool):
            self.fail("invalid")
        try:
            return int(data)
        except (TypeError, ValueError):
            self.fail("invalid")

    default_error_messages = {"invalid": "Give an image id or upload a PNG file."}

    def to_representation(self, value):
        return value


def sides_rule():
    rule = openapi_rule(int, OUTPAINT, SIZE_MULTIPLE)
    return rule


class OutpaintSerializer(RejectUnknownFields, serializers.Serializer):
    """The pixels to add on each side of init_image (a multiple of 8)."""

    def get_fields(self):
        fields = {}
        for side in OUTPAINT_SIDES:
            fields[side] = serializers.IntegerField(required=False, default=0)
            fields[side].openapi_rule = sides_rule()
        return fields


class HiresSerializer(RejectUnknownFields, serializers.Serializer):
    """The hires fix: draw, upscale by `scale`, draw again at `strength`."""

    scale = serializers.FloatField()
    strength = serializers.FloatField(required=False, default=IMAGE_DEFAULTS["hires_strength"])

    def get_fields(self):
        return with_rules(super().get_fields(), {
            "scale": openapi_rule(float, HIRES_SCALE), "strength": openapi_rule(float, STRENGTH)})


class JobCreateSerializer(GenerationParamsSerializer):
    # A mask and outpainting need an init_image, the hires fix none (validation.py); in a
    # form (multipart: no null), the mask's rule says it without null.
    openapi_rule = IMAGE_RULE
    form_rule = {"anyOf": [{"not": {"required": ["mask"]}}, {"required": ["init_image"]}]}

    def get_fields(self):
        # The image parameters' ranges (declared below, the rule is lost when DRF copies
        # a declared field) and the id's 64 bits.
        return with_rules(super().get_fields(), {
            "strength": parameter_rule("strength"), "mask_blur": parameter_rule("mask_blur"),
            "init_image": {"minimum": ID_RANGE["min_value"], "maximum": ID_RANGE["max_value"]},
            "prompt": text_rule(PROMPT_MAX, required=True)})

    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    init_image = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="Image to image: the id of an image you can see, to start from. Without "
                  "width and height, the result keeps its size.")
    mask = ImageOrUploadField(
        required=False, allow_null=True,
        help_text="Inpainting: the id of an image you can see, or an uploaded PNG (multipart), "
                  "of init_image's size; white is drawn again, black kept.")
    strength = parameter_field("strength")
    mask_blur = parameter_field("mask_blur")
    keep_unmasked = serializers.BooleanField(
        required=False, help_text="Inpainting: the pixels outside the mask stay the source's "
                                  "own (default true).")
    outpaint = OutpaintSerializer(required=False, help_text=(
        "Outpainting: pixels to add to init_image on each side, filled by inpainting."))
    hires = HiresSerializer(required=False, allow_null=True, help_text=(
        "Hires fix (text to image): upscale the result by `scale` and draw again from it."))
    upscaler = UsableModelField(
        ModelVersion.Kind.UPSCALER, "upscaler", required=False, allow_null=True,
        help_text="The id of a registered upscaler model (kind `upscaler`, ESRGAN family) that "
                  "makes the picture larger: the hires fix's upscale, or init_image drawn at a "
                  "larger width and height (upscaling). Left out: the plain resampler, "
                  "Lanczos.")

    def validate(self, data):
        """The types only: the rules are checked by submit_job, the one place."""
        data = dict(data)
        data["loras"] = self.pop_loras(data) or []
        for side, pixels in (data.pop("outpaint", None) or {}).items():
            data[f"outpaint_{side}"] = pixels
        hires = data.pop("hires", None)
        if hires:
            data["hires_scale"], data["hires_strength"] = hires["scale"], hires["strength"]
        return data


class JobImageSerializer(ImageUrls, ReadPlan, serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()


class JobLoraSerializer(ReadPlan, serializers.Serializer):
    id = serializers.IntegerField(source="lora_id")
    name = serializers.CharField(source="lora.name")
    weight = serializers.FloatField()


class JobOutpaintSerializer(ReadPlan, serializers.Serializer):
    left = serializers.IntegerField(source="outpaint_left")
    right = serializers.IntegerField(source="outpaint_right")
    up = serializers.IntegerField(source="outpaint_up")
    down = serializers.IntegerField(source="outpaint_down")


class JobHiresSerializer(serializers.Serializer):
    scale = serializers.FloatField(source="hires_scale")
    strength = serializers.FloatField(source="hires_strength")


class JobSerializer(ReadPlan, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    loras = JobLoraSerializer(source="lora_links", many=True)
    images = JobImageSerializer(source="result_images", many=True)
    outpaint = JobOutpaintSerializer(source="*")
    hires = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "status", "progress", "error", "owner", "batch",
                  *[name for name in PARAMETERS if name not in IMAGE_DEFAULTS],
                  "model", "loras", "init_image", "mask", "strength", "mask_blur",
                  "keep_unmasked", "outpaint", "hires", "upscaler", "images", "queued_at",
                  "started_at",
                  "finished_at", "worker", "remix_of"]
        read_only_fields = fields

    @extend_schema_field(JobHiresSerializer(allow_null=True))
    def get_hires(self, job):
        return JobHiresSerializer(job).data if job.hires_scale else None


class JobViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Viewers see and cancel their own jobs; editors and admins see all.
    Another user's job answers 404."""

    queryset = Job.objects.none()  # the model, for the schema; get_queryset() picks the rows
    permission_classes = [ActionPermission]
    filter_backends = [FilterBackend]
    filterset_class = JobFilter
    action_permissions = {"create": ["generation.add_job"], "retry": ["generation.add_job"],
                          "remix": ["generation.add_job"]}

    def get_queryset(self):
        return Job.objects.visible_to(self.request.user).shown()

    parser_classes = [JSONParser, MultiPartParser, FormParser]  # multipart: a mask upload

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
        self.get_object().cancel()
        job = self.get_object()  # as it is now (a worker may have finished it meanwhile)
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
    """A prompt set by slug: a value of another shape is no slug (400, and the schema's
    pattern); a slug naming no set is not found (404)."""

    openapi_rule = {"pattern": f"^{SLUG}$"}
    default_error_messages = {"invalid": "Not a slug: letters, digits, - and _ only."}

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(SLUG, data):
            self.fail("invalid")
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


class BatchViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Batch.objects.none()  # the model, for the schema; get_queryset() picks the rows
    permission_classes = [ActionPermission]
    # Like jobs and training runs, a batch is cancelled by its owner or by whoever sees
    # every job (the queryset): the batch page offers it so.
    action_permissions = {"create": ["generation.add_batch"]}

    def get_queryset(self):
        return Batch.objects.visible_to(self.request.user).select_related("prompt_set", "owner")

    def get_serializer_class(self):
        return BatchCreateSerializer if self.action == "create" else BatchSerializer

    def create(self, request, *args, **kwargs):
        serializer = BatchCreateSerializer(data=request.data, context={"request": request})
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


class PromptSetLorasField(serializers.ListField):
    """The set's LoRAs, the batches' default: [{"id", "weight"}], read from its links;
    written whole (PromptSet.set_loras, which checks them by the rule of a job's)."""

    child = LoraChoiceSerializer()

    def get_attribute(self, prompt_set):
        return [{"id": link.lora_id, "weight": link.weight}
                for link in prompt_set.promptsetlora_set.all()]

    def to_representation(self, data):
        return data


class PromptSetSerializer(RejectUnknownFields, serializers.ModelSerializer):
    items = PromptSetItemSerializer(many=True, read_only=True)
    loras = PromptSetLorasField(required=False)

    class Meta:
        model = PromptSet
        fields = ["id", "name", "slug", "description", "base_prompt", "prompt_template",
                  "style_suffix", "example_theme", "width", "height", "negative_prompt",
                  "loras", "items"]
        read_only_fields = ["id", "items"]
        extra_kwargs = {"slug": {"required": False}}

    def get_fields(self):
        size = openapi_rule(int, SIZE, SIZE_MULTIPLE)
        template = template_rule(PromptSet._meta.get_field("prompt_template").max_length)
        return with_rules(super().get_fields(), {"width": size, "height": size,
                                                 "prompt_template": template})

    def validate(self, data):
        fields = {name: value for name, value in data.items() if name != "loras"}
        instance = PromptSet(**{**self._current(), **fields})
        instance.pk = self.instance.pk if self.instance else None
        instance.clean()
        if "loras" in data:
            # (a PATCH leaves out the defaults of nested fields, the weight 1.0, and does
            # not ask for their required ones)
            missing = {str(number): {"id": ["This field is required."]}
                       for number, choice in enumerate(data["loras"]) if "id" not in choice}
            if missing:
                raise serializers.ValidationError({"loras": missing})
            data["loras"] = [(choice["id"], choice.get("weight", 1.0))
                             for choice in data["loras"]]
            validate_lora_choices(data["loras"])
        return data

    @transaction.atomic
    def create(self, validated_data):
        loras = validated_data.pop("loras", None)
        prompt_set = super().create(validated_data)
        if loras is not None:
            prompt_set.set_loras(loras)
        return prompt_set

    @transaction.atomic
    def update(self, prompt_set, validated_data):
        loras = validated_data.pop("loras", None)
        prompt_set = super().update(prompt_set, validated_data)
        if loras is not None:
            prompt_set.set_loras(loras)
        return prompt_set

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
    file = FileOfTypes("text/csv", filename="items.csv",
                       help_text="A CSV file of at most 1 MB: a header row naming the "
                                 "columns, then one item a row.")


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
    file = FileOfTypes("application/octet-stream", filename="lora.safetensors",
                       required=False, write_only=True)
    file_alternative = "source"  # a new model needs one or the other (validate)
    # A base's VAE override: checked to fit it by the model's rule (check_vae_choice).
    vae = UsableModelField(ModelVersion.Kind.VAE, "vae", required=False, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "source", "file", "sha256", "size_bytes", "family",
                  "trigger_words", "version", "is_active", "is_default", "usable_by",
                  "vae", "description", "metrics", "created_at"]
        read_only_fields = ["id", "sha256", "size_bytes", "is_default", "metrics",
                            "created_at"]
        # Said outright: DRF reads a boolean left out of a form (the multipart upload of a
        # LoRA) as false, and a LoRA uploaded without `is_active` would be registered off.
        extra_kwargs = {"is_active": {"default": True}}

    def get_fields(self):
        return with_rules(super().get_fields(), {"source": SOURCE_RULE})

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
            # A new model's VAE is checked as it is registered (ModelVersion.clean).
            self.instance.check_vae_choice(data.get("vae"))
        request = self.context.get("request")
        if "usable_by" in data and request is not None:
            # Who may set it to what: the model's rule, as in the admin.
            (self.instance or ModelVersion()).check_usable_by_choice(request.user,
                                                                     data["usable_by"])
        # A change may leave the source out: the model's own (a source, or its uploaded file).
        current = (self.instance.source or self.instance.file.name) if self.instance else ""
        if not data.get("file") and not data.get("source", current):
            raise ValidationError({"source": ["Give a hub id or local path, or upload a "
                                              ".safetensors file."]})
        return data


class ModelVersionViewSet(viewsets.ModelViewSet):
    serializer_class = ModelVersionSerializer
    permission_classes = [ActionPermission]
    filter_backends = [FilterBackend]
    filterset_class = ModelVersionFilter
    action_permissions = {
        "create": ["generation.add_modelversion"],
        "update": ["generation.change_modelversion"],
        "partial_update": ["generation.change_modelversion"],
        "destroy": ["generation.delete_modelversion"],
        "make_default": ["generation.change_modelversion"],
    }
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        # Only the models the caller's role may use (usable_by), editors' and admins'
        # retired ones included.
        models = ModelVersion.objects.usable_by_user(self.request.user)
        if not self.request.user.has_perm("generation.change_modelversion"):
            models = models.filter(is_active=True)
        return models

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        upload = data.pop("file", None)
        if upload is not None:
            model = ModelVersion.from_upload(upload, by=request.user, created_by=request.user,
                                             **data)
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

    def get_fields(self):
        return with_rules(super().get_fields(), site_settings_rules())

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

    def retrieve(self, request):
        return Response(SiteSettingsSerializer(SiteSettings.current()).data)

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
