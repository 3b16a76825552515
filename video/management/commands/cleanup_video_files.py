"""`manage.py cleanup_video_files`: remove stored video files no job references, and jobs whose
uploaded video has vanished from storage (the beat task runs the same service daily)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from video.services import video_files_cleanup


class Command(BaseCommand):
    help = (
        "Delete files under videos/, frames/ and thumbnails/ that no video job references, and the video "
        "jobs whose uploaded file is missing from storage (with their remaining files)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List what would be removed; change nothing.")
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=None,
            help="Keep files younger than this (default: VIDEO_CLEANUP_GRACE_SECONDS).",
        )

    def handle(self, *args: Any, dry_run: bool, grace_seconds: int | None, verbosity: int, **options: Any) -> None:
        report = video_files_cleanup(dry_run=dry_run, grace_seconds=grace_seconds)
        verb = "would remove" if dry_run else "removed"
        if verbosity >= 2:
            for job_id in report.vanished_jobs:
                self.stdout.write(f"{verb} job {job_id} (its video file is missing)")
            for name in report.orphan_files:
                self.stdout.write(f"{verb} orphan file {name}")
        if verbosity >= 1:
            summary = (
                f"{len(report.orphan_files)} orphan file(s) and {len(report.vanished_jobs)} job(s) with a missing video"
            )
            if report.expired_uploads:
                summary += f", and {report.expired_uploads} expired resumable upload(s)"

            if dry_run:
                self.stdout.write(f"Dry run: {summary} would be removed; nothing changed.")
            else:
                self.stdout.write(self.style.SUCCESS(f"Removed {summary}."))
