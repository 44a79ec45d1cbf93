"""Chat REST API: thin views over the chat pipeline (chat.pipeline) and chat.selectors."""

from __future__ import annotations

import orjson
from asgiref.sync import async_to_sync
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import export, selectors
from chat.errors import ChatError
from chat.pipeline import accept, answer, sessions
from chat.serializers import (
    ExchangeSerializer,
    FeedbackResultSerializer,
    FeedbackSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    SessionUpdateSerializer,
)
from neonpro.api_errors import ErrorSerializer
from neonpro.tracing import current_trace_id

_ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404, 409, 413,
                                                                422, 429, 503)}


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets `Accept: text/event-stream` through content negotiation (SSE answers)."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return orjson.dumps(data)


class SessionListCreateView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Only sessions whose title or "
                                     "messages contain every word (whole words).")],
        responses={200: SessionSerializer(many=True), **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        if len(query) > 200:
            raise ChatError("invalid", "q must be at most 200 characters.")
        sessions = selectors.session_list_for_user(user=request.user, query=query)[:200]
        return Response(SessionSerializer(sessions, many=True,
                                          context={"request": request}).data)

    @extend_schema(request=SessionCreateSerializer,
                   responses={201: SessionSerializer, **_ERRORS})
    def post(self, request: Request) -> Response:
        payload = SessionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        session = sessions.session_create(user=request.user,
                                          title=payload.validated_data["title"])
        return Response(SessionSerializer(session, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    @extend_schema(responses={200: SessionSerializer, **_ERRORS})
    def get(self, request: Request, session_id) -> Response:
        session = selectors.session_get_for_user(user=request.user, session_id=session_id)
        return Response(SessionSerializer(session, context={"request": request}).data)

    @extend_schema(request=SessionUpdateSerializer,
                   responses={200: SessionSerializer, **_ERRORS})
    def patch(self, request: Request, session_id) -> Response:
        payload = SessionUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        session = sessions.session_rename(user=request.user, session_id=session_id,
                                          title=payload.validated_data["title"])
        return Response(SessionSerializer(session, context={"request": request}).data)

    @extend_schema(request=None, responses={204: None, **_ERRORS})
    def delete(self, request: Request, session_id) -> Response:
        sessions.session_delete(user=request.user, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageFeedbackView(APIView):
    @extend_schema(request=FeedbackSerializer,
                   responses={200: FeedbackResultSerializer, **_ERRORS})
    def post(self, request: Request, message_id) -> Response:
        payload = FeedbackSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        message = sessions.message_feedback_record(
            user=request.user, message_id=message_id,
            rating=payload.validated_data["rating"],
            comment=payload.validated_data["comment"],
        )
        return Response(FeedbackResultSerializer(message).data)


class SessionExportView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=list(export.FORMATS), required=True,
                                     description="md or pdf (`format` is DRF's own)")],
        responses={(200, "text/markdown"): str, (200, "application/pdf"): bytes, **_ERRORS},
        description="The conversation as the clinician sees it, personal data included; "
        "recorded as a data_exported audit event before it is delivered.",
    )
    def get(self, request: Request, session_id) -> HttpResponse:
        exported = export.session_export(user=request.user, session_id=session_id,
                                         export_format=request.query_params.get("as", ""))
        response = HttpResponse(exported.body, content_type=exported.content_type)
        response["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
        response["Cache-Control"] = "no-store"  # personal data: never kept by a cache
        return response


class SessionCloseView(APIView):
    @extend_schema(request=None, responses={200: SessionSerializer, **_ERRORS})
    def post(self, request: Request, session_id) -> Response:
        session = sessions.session_close(user=request.user, session_id=session_id)
        return Response(SessionSerializer(session, context={"request": request}).data)


def _sse(frames) -> StreamingHttpResponse:
    async def events():
        # A client that disconnects does not stop the answer (the rule of every door).
        async for frame in answer.answer_outliving_reader(frames):
            yield b"event: " + frame["type"].encode() + b"\ndata: " + orjson.dumps(frame) + b"\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-store"  # the answer is personal data
    response["X-Accel-Buffering"] = "no"  # let proxies pass tokens through as they come
    return response


class SessionMessagesView(APIView):
    renderer_classes = [renderers.JSONRenderer, EventStreamRenderer]

    @extend_schema(responses={200: MessageSerializer(many=True), **_ERRORS})
    def get(self, request: Request, session_id) -> Response:
        messages = selectors.message_list_for_display(user=request.user, session_id=session_id)
        return Response(MessageSerializer(messages, many=True).data)

    @extend_schema(
        request=MessageCreateSerializer,
        responses={201: ExchangeSerializer, (200, "text/event-stream"): str, **_ERRORS},
        description="Send a message. With `Accept: text/event-stream` the answer streams as "
        "server-sent events carrying the WebSocket frames (ack, token, reset, done, error).",
    )
    def post(self, request: Request, session_id):
        payload = MessageCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        message = {"user": request.user, "session_id": session_id,
                   "content": payload.validated_data["content"],
                   "client_id": payload.validated_data.get("client_id")}
        if request.accepted_renderer.format == "sse":
            # Accepted before the response starts, so a refusal is a plain error response.
            accepted = async_to_sync(accept.message_accept)(**message)
            return _sse(answer.answer_stream(accepted, trace_id=current_trace_id()))
        # DRF views are synchronous: asgiref's async_to_sync is the bridge this way round.
        exchange = async_to_sync(answer.message_exchange)(**message,
                                                         trace_id=current_trace_id())
        body = ExchangeSerializer({"user_message": exchange.user_message,
                                   "assistant_message": exchange.assistant_message}).data
        return Response(body, status=status.HTTP_201_CREATED)
