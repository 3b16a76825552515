from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from quotas.modalities import quota_service_choices
from quotas.pricing import DEFAULT_MONTHLY_LIMIT


class QuotaAccount(models.Model):
    """A user's monthly allowance. `used` only ever changes through conditional UPDATEs in
    `quotas.services`, which is what keeps concurrent requests from overspending."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_account")
    limit = models.PositiveIntegerField(default=DEFAULT_MONTHLY_LIMIT)
    used = models.PositiveIntegerField(default=0)
    period_start = models.DateTimeField()
    reset_date = models.DateTimeField(db_index=True)
    # Periods start on this day of the month (on the last day of shorter months), so an account
    # opened on the 31st resets on Feb 28 and then on Mar 31 again, not on the 28th for ever.
    cycle_day = models.PositiveSmallIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(used__gte=0), name="quota_used_non_negative"),
            models.CheckConstraint(
                condition=models.Q(cycle_day__gte=1, cycle_day__lte=31), name="quota_cycle_day_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.used}/{self.limit}"


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SETTLED = "settled", "Settled"
        REFUNDED = "refunded", "Refunded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_reservations")
    service = models.CharField(max_length=16, choices=quota_service_choices)
    units = models.PositiveIntegerField(help_text="Units currently held or charged by this reservation.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED)
    period_start = models.DateTimeField()
    job_type = models.CharField(max_length=16, blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # What the work actually consumed, reported by the service when it settles (see
    # `quotas.services.reservation_settle(usage=...)`); usage-stats aggregates these.
    tokens = models.PositiveIntegerField(null=True, blank=True)
    audio_seconds = models.FloatField(null=True, blank=True)
    characters = models.PositiveIntegerField(null=True, blank=True)
    processing_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "period_start"]), models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.service} {self.units} units ({self.status})"


class UsageEntry(models.Model):
    """The ledger: one row per charge, adjustment or refund; `units` is signed."""

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        ADJUSTMENT = "adjustment", "Adjustment"
        REFUND = "refund", "Refund"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_entries")
    service = models.CharField(max_length=16, choices=quota_service_choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    units = models.IntegerField()
    reservation = models.ForeignKey(
        Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries"
    )
    period_start = models.DateTimeField()
    job_type = models.CharField(max_length=16, blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["user", "service"]),
            models.Index(fields=["user", "period_start"]),
        ]
        verbose_name_plural = "usage entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.units:+d} {self.service}"
