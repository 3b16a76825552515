from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.db.models import Model, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from video import services
from video.models import VideoAsset, VideoFrame, VideoJob

FRAME_FIELDS: tuple[str, ...] = ("index", "timestamp", "width", "height", "size_bytes", "path")
ASSET_FIELDS: tuple[str, ...] = ("kind", "status", "path", "size_bytes", "error", "updated_at")


class VideoFrameInline(admin.TabularInline):
    model = VideoFrame
    extra = 0
    can_delete = False
    fields = readonly_fields = FRAME_FIELDS
    ordering = ["index"]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class VideoAssetInline(admin.TabularInline):
    model = VideoAsset
    extra = 0
    can_delete = False
    fields = readonly_fields = ASSET_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    list_display = ["filename", "user", "status", "progress_display", "duration_display", "attempts", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["id", "filename", "user__email"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [VideoFrameInline, VideoAssetInline]
    actions = ["requeue", "cancel", "delete_with_files"]
    readonly_fields = [f.name for f in VideoJob._meta.fields]
    fieldsets = (
        (None, {"fields": ("id", "user", "filename", "status", "progress", "error", "error_code")}),
        ("Options", {"fields": ("extract_frames", "frame_interval", "max_frames", "thumbnail_timestamp")}),
        ("Video", {"fields": ("video_path", "size_bytes", "container", "duration", "metadata", "thumbnail_path")}),
        (
            "Processing",
            {
                "fields": (
                    "attempts",
                    "task_id",
                    "claim_token",
                    "heartbeat_at",
                    "reservation",
                    "idempotency_key",
                    "created_at",
                    "updated_at",
                    "started_at",
                    "completed_at",
                )
            },
        ),
    )

    @admin.display(description="Progress", ordering="progress")
    def progress_display(self, job: VideoJob) -> str:
        return f"{job.progress}%"

    @admin.display(description="Duration", ordering="duration")
    def duration_display(self, job: VideoJob) -> str:
        if job.duration is None:
            return "-"
        minutes, seconds = divmod(job.duration, 60)
        return f"{int(minutes)}:{seconds:04.1f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<uuid:object_id>/thumbnail/",
                self.admin_site.admin_view(self.thumbnail_view),
                name="video_videojob_thumbnail",
            )
        ]
        return custom + super().get_urls()

    def thumbnail_view(self, request: HttpRequest, object_id: uuid.UUID) -> HttpResponseBase:
        job = self.get_object(request, str(object_id))
        if job is None or not self.has_view_permission(request, job) or not job.thumbnail_path:
            raise Http404("No thumbnail")
        try:
            handle = default_storage.open(job.thumbnail_path, "rb")
        except FileNotFoundError:
            raise Http404("Thumbnail file missing") from None
        return FileResponse(handle, content_type="image/jpeg")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        job = self.get_object(request, object_id)
        if job is not None and job.thumbnail_path:
            extra_context["thumbnail_url"] = reverse("admin:video_videojob_thumbnail", args=[job.pk])
            extra_context["thumbnail_caption"] = format_html("{} at {} s", job.filename, f"{job.thumbnail_timestamp:g}")
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    @admin.action(description="Re-queue selected jobs (process again)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[VideoJob]) -> None:
        done = sum(services.video_job_requeue(job=job) for job in queryset)
        skipped = queryset.count() - done
        self.message_user(request, f"Re-queued {done} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Skipped {skipped} job(s) being processed right now.", messages.WARNING)

    @admin.action(description="Cancel selected active jobs (refunds their quota)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[VideoJob]) -> None:
        active = queryset.filter(status__in=VideoJob.ACTIVE_STATUSES).select_related("reservation")
        cancelled = sum(services.video_job_cancel(job=job) for job in active)
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)

    @admin.action(description="Delete selected jobs with their files", permissions=["delete"])
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[VideoJob]) -> None:
        count = 0
        for job in queryset.select_related("reservation"):
            services.video_job_delete(job=job)
            count += 1
        self.message_user(request, f"Deleted {count} job(s) and their files.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: VideoJob) -> None:
        services.video_job_delete(job=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[VideoJob]) -> None:
        for job in queryset.select_related("reservation"):
            services.video_job_delete(job=job)
