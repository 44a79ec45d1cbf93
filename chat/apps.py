from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "AI chat"

    def ready(self) -> None:
        # Connects the sign-in failure and success receivers (brute-force lock-out).
        from chat import login_protection

        login_protection.hide_refresh_tokens_from_admin()
