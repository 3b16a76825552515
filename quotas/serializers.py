"""Output shapes of `/api/user/quota` and `/api/user/usage-stats` (keys camelized on the wire)."""

from __future__ import annotations

from rest_framework import serializers

from quotas.modalities import Service


class QuotaSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()
    percent_used = serializers.FloatField()
    warning = serializers.BooleanField(help_text="True from 80% usage on (the seed's quota warning).")
    exhausted = serializers.BooleanField()
    period_start = serializers.DateTimeField()
    reset_date = serializers.DateTimeField()


class PeriodSerializer(QuotaSerializer):
    days_in_period = serializers.IntegerField()
    days_elapsed = serializers.IntegerField()
    days_remaining = serializers.IntegerField()
    elapsed_percent = serializers.FloatField()


class ServiceUsageSerializer(serializers.Serializer):
    # A declared field named like Field's own `label` attribute: DRF's metaclass moves it into the
    # declared fields, which drf-stubs cannot express.
    label = serializers.CharField()  # type: ignore[assignment]
    requests = serializers.IntegerField(help_text="Charged requests in the current period.")
    refunded = serializers.IntegerField(help_text="Requests that failed and were refunded.")
    units = serializers.IntegerField()
    tokens = serializers.IntegerField()
    audio_seconds = serializers.FloatField()
    characters = serializers.IntegerField()
    average_processing_ms = serializers.IntegerField(allow_null=True)


# One field per quota service (every AI modality, and video), in the order of `Service`.
ServicesSerializer = type(
    "ServicesSerializer",
    (serializers.Serializer,),
    {"__module__": __name__, **{service.value: ServiceUsageSerializer() for service in Service}},
)


class TotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    refunded = serializers.IntegerField()
    units = serializers.IntegerField()
    tokens = serializers.IntegerField()
    audio_seconds = serializers.FloatField()
    characters = serializers.IntegerField()


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    requests = serializers.IntegerField()
    units = serializers.IntegerField()


class UsageStatsSerializer(serializers.Serializer):
    period = PeriodSerializer()
    services = ServicesSerializer()
    totals = TotalsSerializer()
    daily = DaySerializer(many=True, help_text="The last 30 days, oldest first, in the user's time zone.")
    timezone = serializers.CharField()
