"""`manage.py reset_quotas` and the hourly beat task share one service."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from quotas.modalities import Service
from quotas.models import QuotaAccount
from quotas.periods import add_month
from quotas.services import quota_account_ensure, quota_reserve
from quotas.tasks import quotas_reset_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(make_user):
    """Two accounts whose month is over and one in the middle of its month, all with usage."""
    now = timezone.now()
    made = {}
    for name, reset_in in (("due1", -timedelta(hours=2)), ("due2", -timedelta(days=3)), ("current", timedelta(days=9))):
        user = make_user(email=f"{name}@example.com")
        quota_account_ensure(user=user)
        quota_reserve(user=user, service=Service.VIDEO, units=5)
        QuotaAccount.objects.filter(user=user).update(
            reset_date=now + reset_in, period_start=now + reset_in - timedelta(days=30), cycle_day=(now + reset_in).day
        )
        made[name] = user
    return made


def state(user) -> tuple:
    account = QuotaAccount.objects.get(user=user)
    return account.used, account.period_start, account.reset_date


def run(*args, verbosity: int = 1) -> str:
    out = StringIO()
    call_command("reset_quotas", *args, stdout=out, verbosity=verbosity)
    return out.getvalue()


def test_default_resets_due_accounts_and_leaves_the_others(accounts):
    before = {name: state(user) for name, user in accounts.items()}
    output = run()
    assert "Reset 2 quota account(s)." in output
    for name in ("due1", "due2"):
        used, period_start, reset_date = state(accounts[name])
        old_reset = before[name][2]
        assert used == 0
        assert period_start == old_reset  # the new period starts at the boundary that passed
        assert reset_date == add_month(old_reset) > timezone.now()
    assert state(accounts["current"]) == before["current"]


def test_dry_run_changes_nothing(accounts):
    before = {name: state(user) for name, user in accounts.items()}
    output = run("--dry-run", verbosity=2)
    assert "Dry run: 2 quota account(s) would be reset; nothing changed." in output
    assert "would reset: due1@example.com used 5/100" in output
    assert "current@example.com" not in output
    assert {name: state(user) for name, user in accounts.items()} == before


def test_user_option_resets_only_that_user_now(accounts):
    before = {name: state(user) for name, user in accounts.items()}
    output = run("--user", "CURRENT@example.com", verbosity=2)
    assert "Reset 1 quota account(s)." in output
    used, period_start, reset_date = state(accounts["current"])
    assert used == 0
    assert reset_date == add_month(period_start)
    assert period_start > before["current"][1]
    # due accounts are not part of a --user run
    assert state(accounts["due1"]) == before["due1"]
    assert state(accounts["due2"]) == before["due2"]


def test_user_option_reports_a_user_without_an_account(make_user):
    make_user(email="fresh@example.com")
    output = run("--user", "fresh@example.com", verbosity=2)
    assert "no quota account yet (nothing to reset): fresh@example.com" in output
    assert not QuotaAccount.objects.filter(user__email="fresh@example.com").exists()


def test_all_resets_every_account(accounts):
    output = run("--all")
    assert "Reset 3 quota account(s)." in output
    assert all(state(user)[0] == 0 for user in accounts.values())


def test_unknown_user_and_conflicting_options_are_errors(accounts):
    with pytest.raises(CommandError, match=r"nobody@example\.com"):
        run("--user", "nobody@example.com")
    with pytest.raises(CommandError, match="cannot be combined"):
        run("--user", "due1@example.com", "--all")
    assert state(accounts["due1"])[0] == 5


def test_verbosity_zero_is_silent(accounts):
    assert run(verbosity=0) == ""
    assert state(accounts["due1"])[0] == 0


def test_second_run_finds_nothing_due(accounts):
    run()
    assert "Reset 0 quota account(s)." in run()


def test_beat_task_runs_the_same_reset_and_is_scheduled_hourly(accounts):
    from config.celery import app

    assert quotas_reset_due.apply().get() == 2
    assert state(accounts["due1"])[0] == 0
    assert state(accounts["current"])[0] == 5
    schedule = django_settings.CELERY_BEAT_SCHEDULE["quotas-reset-due"]
    assert schedule["task"] == quotas_reset_due.name
    assert schedule["task"] in app.tasks
    assert schedule["schedule"] == 3600
