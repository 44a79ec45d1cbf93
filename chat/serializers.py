"""Shapes of the chat REST API (`docs/contract/SPEC.md` §5)."""

from __future__ import annotations

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers

from chat.models import ChatMessage, ChatSession


class SessionCreateSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class SessionSerializer(serializers.ModelSerializer):
    websocket_url = serializers.SerializerMethodField()

    class Meta:
        model = ChatSession
        fields = ["id", "title", "status", "created_at", "last_activity_at", "expires_at",
                  "closed_at", "websocket_url"]

    def get_websocket_url(self, session: ChatSession) -> str:
        request = self.context.get("request")
        path = f"/ws/ai-chat/{session.id}/"
        if request is None:
            return path
        scheme = "wss" if request.is_secure() else "ws"
        return f"{scheme}://{request.get_host()}{path}"


class SessionUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(allow_blank=True, max_length=200, trim_whitespace=True)


class MessageSerializer(serializers.ModelSerializer):
    reply_to = serializers.UUIDField(source="reply_to_id", read_only=True, allow_null=True)

    class Meta:
        model = ChatMessage
        fields = ["id", "role", "content", "status", "error_code", "client_id", "reply_to",
                  "pii_counts", "provider", "model", "input_tokens", "output_tokens",
                  "latency_ms", "first_token_ms", "feedback_rating", "created_at"]


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=ChatMessage.Rating.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    max_length=2000)


class FeedbackResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    feedback_rating = serializers.CharField()
    feedback_at = serializers.DateTimeField()


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of coercing them to text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class MessageContentField(StrictCharField):
    """A message's text: a string here; everything else is checked by the pipeline's one
    rule (`chat.pipeline.checks.message_content_validate`), the same for REST, SSE and WebSocket, so
    an over-long message gets 413 and a NUL character the same refusal on every door."""

    def __init__(self, **kwargs) -> None:
        super().__init__(trim_whitespace=False, allow_blank=True, **kwargs)
        self.validators = [v for v in self.validators
                           if not isinstance(v, ProhibitNullCharactersValidator)]


class MessageCreateSerializer(serializers.Serializer):
    content = MessageContentField()
    client_id = serializers.UUIDField(required=False, allow_null=True)


class ExchangeSerializer(serializers.Serializer):
    user_message = MessageSerializer()
    assistant_message = MessageSerializer()
