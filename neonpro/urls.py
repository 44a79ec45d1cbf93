from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from chat.auth_views import TokenObtainView, TokenRefreshRateLimitedView

# The back-office is the compliance officers' tool: it says so in every page's header.
admin.site.site_header = _("NeonPro — LGPD compliance")
admin.site.site_title = _("NeonPro — LGPD compliance")
admin.site.index_title = _("Compliance back-office")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("api/v1/auth/token/refresh/", TokenRefreshRateLimitedView.as_view(),
         name="token-refresh"),
    path("api/v1/ai-chat/", include("chat.urls")),
    path("api/v1/compliance/", include("compliance.urls")),
    # /api/health, /api/health/live, /api/health/ready, /api/metrics, /api/v1/ai-chat/health
    path("", include("monitoring.urls")),
    path("", include("chat.web_urls")),
]

handler400 = "neonpro.api_errors.bad_request"
handler403 = "neonpro.api_errors.permission_denied"
handler404 = "neonpro.api_errors.page_not_found"
handler500 = "neonpro.api_errors.server_error"
