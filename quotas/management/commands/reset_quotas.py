"""`manage.py reset_quotas`: the monthly quota reset, by hand (the beat task runs it hourly)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.exceptions import InvalidInput
from quotas.services import quota_reset_run


class Command(BaseCommand):
    help = (
        "Reset the quota accounts whose reset date has passed (new period, used back to 0, reset date one "
        "month on). --user resets the named users now, --all every account now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Show what would be reset; change nothing.")
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="EMAIL",
            dest="emails",
            help="Reset this user's account now, due or not (repeatable).",
        )
        parser.add_argument("--all", action="store_true", dest="everyone", help="Reset every account now.")

    def handle(
        self, *args: Any, dry_run: bool, emails: list[str], everyone: bool, verbosity: int, **options: Any
    ) -> None:
        try:
            run = quota_reset_run(emails=emails, everyone=everyone, dry_run=dry_run)
        except InvalidInput as exc:
            raise CommandError("--user and --all cannot be combined.") from exc
        if run.unknown_emails:
            raise CommandError(f"No user with email: {', '.join(run.unknown_emails)}")

        if verbosity >= 2:
            for item in run.items:
                verb = "would reset" if dry_run else ("reset" if item.applied else "skipped (already reset)")
                self.stdout.write(
                    f"{verb}: {item.email} used {item.used}/{item.limit}, reset date "
                    f"{item.old_reset_date:%Y-%m-%d %H:%M} -> {item.new_reset_date:%Y-%m-%d %H:%M}"
                )
            for email in run.without_account:
                self.stdout.write(f"no quota account yet (nothing to reset): {email}")
        if verbosity >= 1:
            if dry_run:
                self.stdout.write(f"Dry run: {len(run.items)} quota account(s) would be reset; nothing changed.")
            else:
                self.stdout.write(self.style.SUCCESS(f"Reset {run.reset_count} quota account(s)."))
