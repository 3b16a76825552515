"""Staff views of conversations and the AI job history. Changes go through `ai_services.services`:
stopping a job refunds its quota, deleting one removes its queued upload."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from ai_services import services
from ai_services.models import AIJob, Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["position", "role", "content", "tokens", "created_at"]
    readonly_fields = ["position", "role", "content", "tokens", "created_at"]
    ordering = ["position"]

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # the transcript is a record: shown, never edited


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "title", "model", "message_count", "created_at", "updated_at"]
    list_filter = ["model", "updated_at"]
    search_fields = ["id", "title", "user__email"]
    list_select_related = ["user"]
    date_hierarchy = "updated_at"
    raw_id_fields = ["user"]
    fields = ["id", "user", "title", "model", "system_prompt", "message_count", "created_at", "updated_at"]
    readonly_fields = ["id", "user", "model", "system_prompt", "message_count", "created_at", "updated_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start from the chat endpoint

    def save_model(self, request: HttpRequest, obj: Conversation, form: ModelForm[Any], change: bool) -> None:
        services.conversation_update(conversation=obj, title=obj.title)

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        services.conversation_delete(conversation=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            services.conversation_delete(conversation=conversation)


@admin.register(AIJob)
class AIJobAdmin(admin.ModelAdmin):
    """The record of what was called and billed: read-only, except for stopping jobs that nothing
    will finish and deleting history."""

    list_display = [
        "id",
        "user",
        "type",
        "status",
        "provider",
        "model",
        "tokens_used",
        "units_charged",
        "processing_time_ms",
        "created_at",
    ]
    list_filter = ["type", "status", "provider", "error_code", "created_at"]
    search_fields = ["id", "user__email", "model", "error"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AIJob._meta.fields]
    actions = ["abandon"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AIJob | None = None) -> bool:
        # Needed for the action; every field stays read-only.
        return request.user.has_perm("ai_services.change_aijob")

    @admin.action(description="Stop the selected unfinished jobs and refund them", permissions=["change"])
    def abandon(self, request: HttpRequest, queryset: QuerySet[AIJob]) -> None:
        unfinished = queryset.filter(status__in=services.UNFINISHED).values_list("id", flat=True)
        stopped = sum(services.ai_job_abandon(job_id=job_id, reason="Stopped by staff.") for job_id in unfinished)
        self.message_user(request, f"Stopped and refunded {stopped} job(s).", messages.SUCCESS)
        skipped = queryset.count() - stopped
        if skipped:
            self.message_user(request, f"Skipped {skipped} finished job(s).", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: AIJob) -> None:
        services.ai_job_delete(job=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AIJob]) -> None:
        for job in queryset:
            services.ai_job_delete(job=job)
