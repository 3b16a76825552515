"""Staff views of quotas: accounts (reset, set limit), the usage ledger and reservations.

Every change goes through `quotas.services`; the ledger and reservations are read-only."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ModelAdmin, helpers
from django.db.models import F, Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from quotas import services
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.pricing import WARNING_RATIO


class UsageLevelFilter(admin.SimpleListFilter):
    title = "usage"
    parameter_name = "usage"

    def lookups(self, request: HttpRequest, model_admin: ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("warning", f"Over {int(WARNING_RATIO * 100)}%"), ("exhausted", "Exhausted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[QuotaAccount]) -> QuerySet[QuotaAccount]:
        if self.value() == "warning":
            # Integer arithmetic (used * 5 >= limit * 4) so both databases agree exactly.
            ratio = Fraction(WARNING_RATIO).limit_denominator(100)
            return queryset.alias(scaled=F("used") * ratio.denominator).filter(scaled__gte=F("limit") * ratio.numerator)
        if self.value() == "exhausted":
            return queryset.filter(used__gte=F("limit"))
        return queryset


class SetLimitForm(forms.Form):
    limit = forms.IntegerField(min_value=0, max_value=10_000_000, help_text="Units per month.")


@admin.register(QuotaAccount)
class QuotaAccountAdmin(admin.ModelAdmin):
    list_display = ["user_email", "used", "limit", "percent_used", "reset_date", "period_start", "ledger"]
    list_filter = [UsageLevelFilter, "reset_date"]
    search_fields = ["user__email", "user__name"]
    list_select_related = ["user"]
    ordering = ["-used"]
    fields = ["user", "limit", "used", "period_start", "reset_date", "cycle_day", "updated_at", "ledger"]
    readonly_fields = ["user", "used", "period_start", "reset_date", "cycle_day", "updated_at", "ledger"]
    actions = ["reset_now", "set_limit"]

    @admin.display(description="user", ordering="user__email")
    def user_email(self, account: QuotaAccount) -> str:
        return account.user.email

    @admin.display(description="% used")
    def percent_used(self, account: QuotaAccount) -> str:
        return f"{100 * account.used / account.limit:.0f}%" if account.limit else "100%"

    @admin.display(description="ledger")
    def ledger(self, account: QuotaAccount) -> str:
        url = reverse("admin:quotas_usageentry_changelist") + f"?user__id__exact={account.user_id}"
        return format_html('<a href="{}">Usage ledger</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are created on a user's first use, with the default limit.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: QuotaAccount, form: forms.Form, change: bool) -> None:
        if "limit" in form.changed_data:
            services.quota_limit_set(account=obj, limit=form.cleaned_data["limit"])

    @admin.action(description="Reset now (used to 0, a new month-long period from today)")
    def reset_now(self, request: HttpRequest, queryset: QuerySet[QuotaAccount]) -> None:
        count = 0
        for account in queryset:
            services.quota_reset(account=account)
            count += 1
        self.message_user(request, f"Reset {count} quota account(s).", messages.SUCCESS)

    @admin.action(description="Set the monthly limit")
    def set_limit(self, request: HttpRequest, queryset: QuerySet[QuotaAccount]) -> TemplateResponse | None:
        form = SetLimitForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            limit = form.cleaned_data["limit"]
            for account in queryset:
                services.quota_limit_set(account=account, limit=limit)
            self.message_user(request, f"Set the limit of {queryset.count()} account(s) to {limit}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Set the monthly limit",
            "form": form,
            "accounts": queryset.select_related("user"),
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/quotas/quotaaccount/set_limit.html", context)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(UsageEntry)
class UsageEntryAdmin(_ReadOnlyAdmin):
    """The ledger: every charge, adjustment and refund, signed."""

    list_display = ["created_at", "user", "service", "kind", "units", "job_type", "job_id", "reservation_id"]
    list_filter = ["service", "kind", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["user__email", "job_id"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in UsageEntry._meta.fields]


@admin.register(Reservation)
class ReservationAdmin(_ReadOnlyAdmin):
    list_display = ["created_at", "user", "service", "units", "status", "job_type", "job_id", "processing_ms"]
    list_filter = ["status", "service", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["user__email", "job_id"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Reservation._meta.fields]
    actions = ["refund"]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Needed for the refund action; every field stays read-only.
        return request.user.has_perm("quotas.change_reservation")

    @admin.action(description="Refund the selected reservations (work that never completed)")
    def refund(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        count = 0
        for reservation in queryset.exclude(status=Reservation.Status.REFUNDED):
            services.reservation_refund(reservation=reservation)
            count += 1
        self.message_user(request, f"Refunded {count} reservation(s).", messages.SUCCESS)
