"""AI jobs become billable jobs of `core.jobs`: the claim columns, and `reservation_id` (a bare
UUID until now) becomes a foreign key on the same column, values kept."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def orphans_clear(apps: Any, schema_editor: Any) -> None:
    # A reservation deleted since (none should be) would make the foreign key constraint fail:
    # the job no longer says what paid for it, as a SET_NULL would have left it.
    AIJob = apps.get_model("ai_services", "AIJob")
    Reservation = apps.get_model("quotas", "Reservation")
    known = Reservation.objects.values("id")
    AIJob.objects.exclude(reservation__isnull=True).exclude(reservation__in=known).update(reservation=None)


def heartbeats_carry(apps: Any, schema_editor: Any) -> None:
    # A queued transcription in flight beat by touching `updated_at`; the reaper now reads
    # `heartbeat_at`, so it starts from the last beat.
    AIJob = apps.get_model("ai_services", "AIJob")
    running = AIJob.objects.filter(status="processing").exclude(input_file="")
    running.update(heartbeat_at=models.F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("ai_services", "0003_job_type_choices_from_the_modality_table"),
        ("quotas", "0003_quota_cycle_day"),
    ]

    operations = [
        # The field is renamed in the state only: the column is `reservation_id` before and after.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="aijob", name="reservation_id"),
                migrations.AddField(
                    model_name="aijob",
                    name="reservation",
                    field=models.UUIDField(blank=True, null=True, db_column="reservation_id"),
                ),
            ],
        ),
        migrations.RunPython(orphans_clear, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="aijob",
            name="reservation",
            field=models.ForeignKey(
                blank=True,
                help_text="Quota reservation paying for this job.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="quotas.reservation",
            ),
        ),
        migrations.AddField(
            model_name="aijob",
            name="claim_token",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="aijob",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="aijob",
            name="progress",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="aijob",
            name="task_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(heartbeats_carry, migrations.RunPython.noop),
    ]
