"""Compliance API (SPEC §7): consents, the user's own data export, data-subject requests."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import audit, dsr, services
from compliance.models import ConsentRecord, DataSubjectRequest
from compliance.serializers import (
    ConsentGrantSerializer,
    ConsentSerializer,
    ConsentStatusSerializer,
    DataSubjectRequestCreateSerializer,
    DataSubjectRequestSerializer,
)
from neonpro.api_errors import ErrorSerializer
from neonpro.client_address import request_client_ip
from neonpro.errors import NeonProError

_AUDIT_UNAVAILABLE = "This could not be recorded in the audit trail right now; try again shortly."


def client_ip(request) -> str | None:
    # Behind our proxy only: neonpro.client_address settles it for every request.
    return request_client_ip(request)


class ConsentListCreateView(APIView):
    @extend_schema(responses={200: ConsentStatusSerializer})
    def get(self, request: Request) -> Response:
        records = ConsentRecord.objects.filter(user=request.user).order_by("-granted_at")
        return Response(ConsentStatusSerializer({
            "terms_version": services.current_terms_version(),
            "consent_required": services.consent_get_active(user=request.user) is None,
            "records": records,
        }).data)

    @extend_schema(request=ConsentGrantSerializer,
                   responses={201: ConsentSerializer, 400: OpenApiResponse(ErrorSerializer),
                              503: OpenApiResponse(ErrorSerializer)})
    def post(self, request: Request) -> Response:
        payload = ConsentGrantSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            record = services.consent_grant(
                user=request.user,
                purpose=payload.validated_data["purpose"],
                ip_address=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except audit.AuditWriteError:
            raise NeonProError("service_unavailable", _AUDIT_UNAVAILABLE) from None
        return Response(ConsentSerializer(record).data, status=status.HTTP_201_CREATED)


class ConsentRevokeView(APIView):
    @extend_schema(responses={204: None, 404: OpenApiResponse(ErrorSerializer),
                              503: OpenApiResponse(ErrorSerializer)})
    def delete(self, request: Request, purpose: str) -> Response:
        if purpose not in ConsentRecord.Purpose.values:
            raise NeonProError("not_found", "Unknown consent purpose.")
        try:
            revoked = services.consent_revoke(user=request.user, purpose=purpose)
        except audit.AuditWriteError:
            raise NeonProError("service_unavailable", _AUDIT_UNAVAILABLE) from None
        if not revoked:
            raise NeonProError("not_found", "No active consent for this purpose.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyDataView(APIView):
    """The user's own data export (LGPD Art. 18 II/V), machine-readable JSON."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiResponse(ErrorSerializer)})
    def get(self, request: Request) -> Response:
        try:
            document = dsr.dsr_export_subject(user=request.user)
        except audit.AuditWriteError:
            raise NeonProError("service_unavailable", _AUDIT_UNAVAILABLE) from None
        response = Response(document)
        response["Content-Disposition"] = 'inline; filename="my-data.json"'
        response["Cache-Control"] = "no-store"
        return response


class DataSubjectRequestListCreateView(APIView):
    """File a data-subject request, or list your own."""

    @extend_schema(responses={200: DataSubjectRequestSerializer(many=True)})
    def get(self, request: Request) -> Response:
        requests = DataSubjectRequest.objects.filter(user=request.user).order_by("-received_at")
        return Response(DataSubjectRequestSerializer(requests, many=True).data)

    @extend_schema(request=DataSubjectRequestCreateSerializer,
                   responses={201: DataSubjectRequestSerializer,
                              400: OpenApiResponse(ErrorSerializer)})
    def post(self, request: Request) -> Response:
        payload = DataSubjectRequestCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        filed = dsr.dsr_create(user=request.user, **payload.validated_data)
        if filed.request_type == DataSubjectRequest.RequestType.CONSENT_REVOCATION:
            # Revocation must be as easy as consent (LGPD Art. 8 §5): applied at once.
            try:
                dsr.dsr_revoke_consent(request=filed, actor=request.user)
            except audit.AuditWriteError:
                pass  # the request stays open for an officer; the failure was counted
        filed.refresh_from_db()
        return Response(DataSubjectRequestSerializer(filed).data,
                        status=status.HTTP_201_CREATED)
