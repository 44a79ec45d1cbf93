from django.urls import path

from chat import api

urlpatterns = [
    path("sessions/", api.SessionListCreateView.as_view(), name="chat-sessions"),
    path("sessions/<uuid:session_id>/", api.SessionDetailView.as_view(), name="chat-session"),
    path("sessions/<uuid:session_id>/close/", api.SessionCloseView.as_view(),
         name="chat-session-close"),
    path("sessions/<uuid:session_id>/messages/", api.SessionMessagesView.as_view(),
         name="chat-session-messages"),
    path("sessions/<uuid:session_id>/export/", api.SessionExportView.as_view(),
         name="chat-session-export"),
    path("messages/<uuid:message_id>/feedback/", api.MessageFeedbackView.as_view(),
         name="chat-message-feedback"),
]
