from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Each app's api module registers its viewsets on the router; its schema module declares
# their OpenAPI schema.
import accounts.schema  # noqa: F401
import albums.api  # noqa: F401
import albums.schema  # noqa: F401
import generation.api
import generation.schema  # noqa: F401
import training.api  # noqa: F401
import training.schema  # noqa: F401
from core.api import router

from . import api, metrics, schema  # noqa: F401  (schema: the health check's)

handler400 = api.bad_request
handler404 = api.not_found
handler500 = api.server_error

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/health/", api.health, name="api_health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script from a URL: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/config/", generation.api.site_settings, name="api_config"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/", include(router.urls)),
    path("", include("albums.urls")),
    path("", include("generation.urls")),
    path("", include("training.urls")),
    path("", include("accounts.urls")),
]
