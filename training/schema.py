"""The OpenAPI declarations of the training API (api.py's views): summaries, examples and
the error answers of each operation. imagineer/urls.py imports it with the views."""

from drf_spectacular.utils import extend_schema

from core.api import CONFLICT_IN_REQUEST, document, errors, example

from . import api_examples as examples
from .api import TrainingRunCreateSerializer, TrainingRunSerializer, TrainingRunViewSet

document(
    TrainingRunViewSet,
    list=extend_schema(
        summary="List training runs",
        description="Editors and admins see every run; viewers their own. Newest first.",
        responses={200: TrainingRunSerializer(many=True), **errors(400, 401, examples={
            400: {"status": ["'done' is not one of queued, running, succeeded, failed, "
                             "cancelled"]}})},
        examples=[example("Run", examples.RUN)],
    ),
    create=extend_schema(
        summary="Train a LoRA from an album",
        description="`album` and `name` are required; every other setting has a default. "
                    "The run is queued on the training worker: poll it until `status` is "
                    "`succeeded` (`lora` is then the registered LoRA's model id), `failed` "
                    "or `cancelled`.",
        request=TrainingRunCreateSerializer,
        responses={201: TrainingRunSerializer, **errors(400, 401, 403, 413, 429, examples={
            400: examples.RUN_REFUSED})},
        examples=[example("Settings", examples.RUN_CREATE, request=True),
                  example("Run", examples.RUN_QUEUED)],
    ),
    retrieve=extend_schema(
        summary="Get a training run",
        description="Status, progress (0 to 1), step, the loss at each step `[step, loss]`, "
                    "the end of the log and, once it succeeded, the LoRA and the validation "
                    "images drawn without and with it at the same seed.",
        responses={200: TrainingRunSerializer, **errors(401, 404, missing="TrainingRun")},
        examples=[example("Run", examples.RUN)],
    ),
    cancel=extend_schema(
        summary="Cancel a training run",
        request=None,
        responses={200: TrainingRunSerializer, **errors(401, 404, missing="TrainingRun")},
        examples=[example("Run", {**examples.RUN_QUEUED, "status": "cancelled",
                                  "finished_at": "2026-11-26T07:03:22.114170Z"})],
    ),
    retry=extend_schema(
        summary="Retry a failed or cancelled run",
        request=None,
        responses={200: TrainingRunSerializer, **errors(
            400, 401, 403, 404, 409, missing="TrainingRun", examples={409: {
                "detail": CONFLICT_IN_REQUEST, "status": [
                    "only a failed or cancelled run can be retried; this one is succeeded."]}})},
        examples=[example("Run", {**examples.RUN_QUEUED, "attempts": 1})],
    ),
)
