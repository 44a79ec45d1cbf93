"""Helpers shared by the chat tests."""

from __future__ import annotations

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken


def bearer(user) -> str:
    return f"Bearer {AccessToken.for_user(user)}"


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def ws_headers(user=None, origin: str = "http://localhost") -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin.encode())]
    if user is not None:
        headers.append((b"authorization", bearer(user).encode()))
    return headers
