from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "AI chat"

    def ready(self) -> None:
        # Imported here, not at the top: they import the chat's models, which exist
        # only once the app registry is ready.
        from chat import retention, subject_data
        from chat.models import ChatSession
        from compliance import audit, registry

        # The chat's share of data-subject rights, consent revocation and retention.
        registry.register_subject_data(subject_data.HANDLER)
        registry.register_retention_purger(retention.purge_chat_data)
        # Session metadata in the change log; titles and PII mappings stay out of it.
        audit.auditlog_register(ChatSession, include_fields=[
            "user", "clinic", "status", "closed_at", "close_reason", "legal_hold"])
