from __future__ import annotations

from rest_framework import serializers

from compliance.models import ConsentRecord, DataSubjectRequest


class ConsentSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = ConsentRecord
        fields = ["id", "purpose", "terms_version", "granted_at", "revoked_at", "active"]

    def get_active(self, record: ConsentRecord) -> bool:
        return record.is_active


class ConsentGrantSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentRecord.Purpose.choices)
    accepted = serializers.BooleanField(
        help_text="Must be true: the user read and accepts the current terms."
    )

    def validate_accepted(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("Consent requires accepted=true.")
        return value


class ConsentStatusSerializer(serializers.Serializer):
    terms_version = serializers.CharField()
    consent_required = serializers.BooleanField()
    records = ConsentSerializer(many=True)


class DataSubjectRequestSerializer(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = DataSubjectRequest
        fields = ["id", "request_type", "status", "details", "received_at", "due_at",
                  "completed_at", "resolution_note", "overdue"]

    def get_overdue(self, request: DataSubjectRequest) -> bool:
        return request.is_overdue()


class DataSubjectRequestCreateSerializer(serializers.Serializer):
    request_type = serializers.ChoiceField(choices=DataSubjectRequest.RequestType.choices)
    details = serializers.CharField(max_length=4000, required=False, allow_blank=True,
                                    default="")
