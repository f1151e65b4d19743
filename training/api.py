"""The training API: /api/training-runs/.

Editors and admins start runs (POST) and retry them; everyone signed in lists and reads
the runs they may see (editors and admins: all runs; viewers: their own, which they have
only if they once were editors), and cancels those. Another user's run answers 404.
"""

import django_filters
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from albums.models import Album
from core.api import (
    ActionPermission,
    RejectUnknownFields,
    router,
    with_rules,
)
from core.filters import FilterBackend, choice_filter
from generation.api import JobImageSerializer
from generation.models import ModelVersion

from .models import TrainingRun
from .submit import CONFIG_FIELDS, retry_run, submit_run
from .validation import DEFAULTS as TRAINING_DEFAULTS
from .validation import openapi_rules, validate_training


class TrainingRunFilter(django_filters.FilterSet):
    status = choice_filter(TrainingRun.Status.values)

    class Meta:
        model = TrainingRun
        fields = []


class TrainingRunCreateSerializer(RejectUnknownFields, serializers.Serializer):
    """album and name are required; every other field has a default. The ranges are
    checked by training.validation, the one place for them."""

    album = serializers.PrimaryKeyRelatedField(queryset=Album.objects.all())
    name = serializers.CharField(allow_blank=True)
    base_model = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all(),
                                                    required=False, allow_null=True)
    rank = serializers.IntegerField(required=False)
    alpha = serializers.FloatField(required=False)
    learning_rate = serializers.FloatField(required=False)
    steps = serializers.IntegerField(required=False)
    batch_size = serializers.IntegerField(required=False)
    gradient_accumulation = serializers.IntegerField(required=False)
    resolution = serializers.IntegerField(required=False)
    seed = serializers.IntegerField(required=False, allow_null=True)
    trigger_word = serializers.CharField(required=False, allow_blank=True)
    # The defaults said outright: DRF reads a boolean left out of a form as false.
    center_crop = serializers.BooleanField(default=TRAINING_DEFAULTS["center_crop"])
    random_flip = serializers.BooleanField(default=TRAINING_DEFAULTS["random_flip"])
    train_convolutions = serializers.BooleanField(
        default=TRAINING_DEFAULTS["train_convolutions"])
    checkpoint_every = serializers.IntegerField(required=False)
    validation_prompt = serializers.CharField(required=False, allow_blank=True)

    def get_fields(self):
        return with_rules(super().get_fields(), openapi_rules())

    def validate(self, data):
        return validate_training(data, user=self.context["request"].user)


class ValidationPairSerializer(serializers.Serializer):
    """One validation prompt drawn at the same seed without and with the LoRA."""

    prompt = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    without_lora = JobImageSerializer()
    with_lora = JobImageSerializer()

    def to_representation(self, pair):
        without_lora, with_lora = pair
        return super().to_representation({
            "prompt": with_lora.prompt, "seed": with_lora.params.get("seed"),
            "without_lora": without_lora, "with_lora": with_lora,
        })


class TrainingRunSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    validation_images = ValidationPairSerializer(many=True)

    class Meta:
        model = TrainingRun
        fields = ["id", "name", "album", "base_model", "owner", *CONFIG_FIELDS, "status",
                  "progress", "current_step", "losses", "log_tail", "error", "attempts",
                  "lora", "validation_album", "validation_images", "created_at",
                  "started_at", "finished_at"]
        read_only_fields = fields


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = TrainingRun.objects.none()  # the model, for the schema; get_queryset() picks rows
    permission_classes = [ActionPermission]
    filter_backends = [FilterBackend]
    filterset_class = TrainingRunFilter
    action_permissions = {"create": ["training.add_trainingrun"],
                          "retry": ["training.add_trainingrun"]}

    def get_queryset(self):
        return TrainingRun.objects.visible_to(self.request.user).select_related("owner")

    def get_serializer_class(self):
        return TrainingRunCreateSerializer if self.action == "create" else TrainingRunSerializer

    def _answer(self, run, code=status.HTTP_200_OK):
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run, context={"request": self.request}).data,
                        status=code)

    def create(self, request, *args, **kwargs):
        serializer = TrainingRunCreateSerializer(data=request.data,
                                                 context={"request": request})
        serializer.is_valid(raise_exception=True)
        run = submit_run(request.user, serializer.validated_data)
        return self._answer(run, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued run, or stop a running one before its next step."""
        run = self.get_object()
        run.cancel()
        return self._answer(run)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed or cancelled run again; it resumes from its last checkpoint."""
        run = retry_run(self.get_object(), by=request.user)
        return self._answer(run)


router.register("training-runs", TrainingRunViewSet, basename="trainingrun")
