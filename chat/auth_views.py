"""The API's sign-in: `POST /api/v1/auth/token/` and `POST /api/v1/auth/token/refresh/`.

Lock-out and the per-address limit are the project's sign-in protection
(neonpro.login_protection); each sign-in starts a refresh-token family
(chat.token_families).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from chat.token_families import FamilyTokenObtainPairSerializer, FamilyTokenRefreshSerializer
from neonpro.api_errors import ErrorSerializer
from neonpro.login_protection import (
    limit_token_requests,
    lockout_error,
    login_success_record,
    request_lockout,
)

_ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 429, 503)}


class TokenObtainView(TokenObtainPairView):
    """`POST /api/v1/auth/token/` with lock-out after repeated failures (429 + Retry-After)."""

    # Each sign-in starts a refresh-token family (chat.token_families).
    serializer_class = FamilyTokenObtainPairSerializer

    @extend_schema(request=TokenObtainPairSerializer,
                   responses={200: TokenObtainPairSerializer, **_ERRORS})
    def post(self, request: Request, *args, **kwargs) -> Response:
        limit_token_requests(request)
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            lockout = request_lockout(request)
            if lockout is not None:
                raise lockout_error(lockout) from None
            raise
        username = request.data.get(get_user_model().USERNAME_FIELD)
        login_success_record(username=username if isinstance(username, str) else None)
        return response


class TokenRefreshRateLimitedView(TokenRefreshView):
    """`POST /api/v1/auth/token/refresh/`: single-use refresh tokens, rate limited per address;
    a rotated token used again revokes its whole family (chat.token_families)."""

    serializer_class = FamilyTokenRefreshSerializer

    @extend_schema(request=TokenRefreshSerializer,
                   responses={200: TokenRefreshSerializer, **_ERRORS})
    def post(self, request: Request, *args, **kwargs) -> Response:
        limit_token_requests(request)
        return super().post(request, *args, **kwargs)
