from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from analytics import views as analytics_views
from config import health
from core import metrics

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/dashboard/", analytics_views.dashboard, name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api-docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/auth/", include("accounts.urls.auth")),
    path("api/user/", include("accounts.urls.user")),
    path("api/user/", include("quotas.urls")),
    path("api/ai/", include("ai_services.urls")),
    path("api/video/", include("video.urls")),
    # The seed lists embeddings at `/api/embeddings` itself (no trailing slash, like every other path).
    path("api/embeddings", include("embeddings.root_urls")),
    path("api/embeddings/", include("embeddings.urls")),
]

handler400 = "core.api.error_views.bad_request"
handler403 = "core.api.error_views.permission_denied"
handler404 = "core.api.error_views.page_not_found"
handler500 = "core.api.error_views.server_error"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.STATIC_URL, document_root=settings.STATIC_ROOT)
