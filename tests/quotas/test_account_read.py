"""The compiled read of a quota account (what the X-Quota-* headers read after a charge) gives
what the ORM's own `get` does, on every database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quotas.models import QuotaAccount
from quotas.selectors import quota_account_forget, quota_account_get
from quotas.services import quota_account_ensure, quota_reserve

pytestmark = pytest.mark.django_db


def test_the_compiled_read_is_the_querysets(make_user) -> None:
    first, second, without = make_user(), make_user(), make_user()
    for user in (first, second):
        quota_account_ensure(user=user)
    QuotaAccount.objects.filter(user=second).update(limit=77, reset_date=datetime(2031, 5, 6, 7, 8, 9, 10, tzinfo=UTC))
    quota_reserve(user=first, service="chat", units=3)

    for user in (first, second):
        quota_account_forget(user=user)
        read = quota_account_get(user=user)
        expected = QuotaAccount.objects.get(user=user)
        for field in QuotaAccount._meta.concrete_fields:
            assert getattr(read, field.attname) == getattr(expected, field.attname), field.name
        assert read._state.adding is False
        assert read._state.db == "default"
    assert quota_account_get(user=first).used == 3
    assert quota_account_get(user=second).reset_date == datetime(2031, 5, 6, 7, 8, 9, 10, tzinfo=UTC)

    quota_account_forget(user=without)
    QuotaAccount.objects.filter(user=without).delete()
    with pytest.raises(QuotaAccount.DoesNotExist):
        quota_account_get(user=without)
