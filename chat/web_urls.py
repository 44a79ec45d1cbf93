"""The clinician web UI: sign-in, consent, privacy settings and the chat page."""

from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from chat import web_views

urlpatterns = [
    path(
        "login/",
        web_views.content_security_policy(
            auth_views.LoginView.as_view(redirect_authenticated_user=True)
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", RedirectView.as_view(url="/chat/", permanent=False), name="root"),
    # Browsers ask for /favicon.ico on every page whatever the markup says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"), permanent=True),
         name="favicon"),
    path("chat/", web_views.chat_home, name="chat-home"),
    path("chat/consent/", web_views.consent, name="chat-consent"),
    path("chat/consent/revoke/", web_views.consent_revoke, name="chat-consent-revoke"),
    path("chat/privacy/", web_views.privacy, name="chat-privacy"),
    path("chat/<uuid:session_id>/", web_views.chat_session_page, name="chat-session-page"),
]
