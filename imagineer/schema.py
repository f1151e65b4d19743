"""The OpenAPI declaration of the health check (api.py). urls.py imports it with the view."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from core.api import document, errors, example

from .api import HealthSerializer, health
from .health import PARTS

HEALTHY = {
    "status": "ok", "failing": [], "database": "ok",
    "queue_depth": {"generation": 0, "training": 0},
    "workers": {"status": "ok", "timeout_seconds": 120, "workers": [
        {"name": "gpu1:4242", "cluster": "imagineer", "started_at": "2026-11-26T07:00:00Z",
         "last_seen": "2026-11-26T07:10:00Z", "seconds_ago": 12.5}]},
    "disk": {"status": "ok", "free_mb": 51200, "free_percent": 40.0, "min_free_mb": 1024},
}


document(health, get=extend_schema(
    summary="Check the service's health",
    description="For load balancers and monitors: no authentication for the status alone "
                '(`{"status": "ok"}` or `{"status": "unhealthy"}`, 200 or 503). The report '
                "(each part, queue depths, workers, disk) is for the metrics token "
                "(`Authorization: Bearer <IMAGINEER_METRICS_TOKEN>`) or a staff session. "
                'Each part\'s check is "ok", "skipped: ..." or "error: ..."; any error answers '
                "503 and is named in `failing`. `?only=database,disk` lets only those parts "
                "decide the status (a web container's probe need not fail while no worker "
                "runs).",
    tags=["health"],
    parameters=[OpenApiParameter(
        # The server's rule (imagineer/api.py): comma-separated, empty parts ignored.
        "only", {"type": "string", "pattern": f"^,*(({'|'.join(PARTS)})(,+|$))*$"},
        description="Comma-separated parts that decide the status: "
        + ", ".join(PARTS) + ". Default: all.")],
    responses={
        200: OpenApiResponse(HealthSerializer, description="Healthy."),
        **errors(400, examples={400: {"only": ["Unknown part: cpu. Allowed: "
                                               + ", ".join(PARTS) + "."]}}),
        503: OpenApiResponse(HealthSerializer, description="Unhealthy: `failing` names the "
                                                           "parts, and their checks say why."),
    },
    examples=[
        example("Healthy, to anyone", {"status": "ok"}, status_codes=[200]),
        example("Unhealthy, to anyone", {"status": "unhealthy"}, status_codes=[503]),
        example("Healthy", HEALTHY, status_codes=[200]),
        example("No worker", {
            **HEALTHY, "status": "unhealthy", "failing": ["workers"],
            "workers": {"status": "error: no worker seen in the last 120 s: imagineer, training",
                        "timeout_seconds": 120, "workers": []},
        }, status_codes=[503]),
    ],
))
