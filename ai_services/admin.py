from __future__ import annotations

from django.contrib import admin

from ai_services.models import AIJob, Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["position", "role", "content", "tokens", "created_at"]
    readonly_fields = fields
    ordering = ["position"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "title", "model", "message_count", "updated_at"]
    list_filter = ["model", "updated_at"]
    search_fields = ["id", "title", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["id", "created_at", "updated_at", "message_count"]
    inlines = [MessageInline]


@admin.register(AIJob)
class AIJobAdmin(admin.ModelAdmin):
    """Read-only: jobs are the record of what was called and billed."""

    list_display = ["id", "user", "type", "status", "provider", "model", "tokens_used", "units_charged", "created_at"]
    list_filter = ["type", "status", "provider", "created_at"]
    search_fields = ["id", "user__email", "model", "error"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AIJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
