"""Operations URLs, included at the site root (before the web UI's catch-alls)."""

from django.urls import path

from monitoring import views

urlpatterns = [
    path("api/health", views.system_health, name="health"),
    path("api/health/live", views.liveness, name="health-live"),
    path("api/health/ready", views.readiness, name="health-ready"),
    path("api/metrics", views.metrics, name="metrics"),
    path("api/v1/ai-chat/health", views.ai_chat_health, name="ai-chat-health"),
]
