"""Writes compiled once per connection (`core.compiled_queries`) store what the ORM's own would."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import F, Model

from ai_services.models import AIJob, Conversation
from core.compiled_queries import row_insert, rows_update, update_compile
from quotas.modalities import CHAT
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.services import quota_account_ensure

pytestmark = pytest.mark.django_db


def _stored(obj: Model, *, but: Collection[str] = ()) -> dict[str, object]:
    """The row of `obj` as stored, without the fields named in `but`."""
    row = type(obj).objects.get(pk=obj.pk)
    return {f.attname: getattr(row, f.attname) for f in type(obj)._meta.concrete_fields if f.attname not in but}


def _same_row(inserted: Model, by_orm: Model, *, differing: set[str]) -> None:
    """Both rows as stored are equal but for `differing`, and each is what its instance holds."""
    assert _stored(inserted) == {f.attname: getattr(inserted, f.attname) for f in type(inserted)._meta.concrete_fields}
    assert _stored(inserted, but=differing) == _stored(by_orm, but=differing)


def test_a_job_row_is_the_orms(user) -> None:
    conversation = row_insert(Conversation(user=user, title="Hello", message_count=2))
    reservation = Reservation.objects.create(user=user, service=CHAT.service, units=2, period_start=datetime.now(UTC))
    values = {
        "user": user,
        "type": CHAT.value,
        "status": AIJob.Status.PROCESSING,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": {"message": "Hi — ça va?", "nested": [1, 2.5, None, True]},
        "units_charged": 2,
        "conversation": conversation,
        "reservation": reservation,
        "claim_token": "abc",
        "started_at": datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    }
    inserted = row_insert(AIJob(id=uuid.uuid4(), **values))
    by_orm = AIJob.objects.create(id=uuid.uuid4(), **values)

    assert inserted._state.adding is False
    assert inserted._state.db == "default"
    assert inserted.created_at is not None  # auto_now_add, set by the field as `save` does
    _same_row(inserted, by_orm, differing={"id", "created_at", "updated_at"})
    assert _stored(inserted)["input"] == values["input"]
    assert _stored(conversation)["title"] == "Hello"


def test_an_auto_incremented_key_is_read_back(user) -> None:
    reservation = Reservation.objects.create(user=user, service=CHAT.service, units=2, period_start=datetime.now(UTC))
    values = {"user": user, "service": CHAT.service, "kind": UsageEntry.Kind.CHARGE, "units": 2}
    values |= {"reservation": reservation, "period_start": reservation.period_start, "job_id": "j"}
    first = row_insert(UsageEntry(**values))
    by_orm = UsageEntry.objects.create(**values)
    second = row_insert(UsageEntry(**values))

    assert isinstance(first.pk, int)
    assert first.pk < by_orm.pk < second.pk
    _same_row(first, by_orm, differing={"id", "created_at"})


def test_the_key_is_read_back_where_inserts_return_nothing(user, monkeypatch) -> None:
    # SQLite before 3.35 has no INSERT ... RETURNING: the row is then saved by the ORM, which
    # reads the key its own way there.
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL always returns the inserted row's columns")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    reservation = Reservation.objects.create(user=user, service=CHAT.service, units=2, period_start=datetime.now(UTC))
    values = {"user": user, "service": CHAT.service, "kind": UsageEntry.Kind.CHARGE, "units": 3}
    entry = row_insert(UsageEntry(reservation=reservation, period_start=reservation.period_start, **values))
    assert UsageEntry.objects.get(pk=entry.pk).units == 3


def test_an_expression_is_refused_and_nothing_is_written(user) -> None:
    before = Conversation.objects.count()
    with pytest.raises(TypeError, match="expression"):
        row_insert(Conversation(user=user, title="x", message_count=F("message_count") + 1))
    assert Conversation.objects.count() == before


def test_a_compiled_update_changes_what_the_querysets_would(make_user) -> None:
    accounts = [quota_account_ensure(user=make_user()) for _ in range(3)]
    sentinel = -9_000_000_001
    compiled = update_compile(
        QuotaAccount.objects.filter(pk=sentinel, used__lte=F("limit") - 5),
        connection,
        [sentinel],
        used=F("used") + 5,
    )
    QuotaAccount.objects.filter(pk=accounts[1].pk).update(used=F("limit") - 4)

    assert compiled.execute(connection, [accounts[0].pk]) == 1
    assert compiled.execute(connection, [accounts[1].pk]) == 0  # does not fit: the condition holds
    assert compiled.execute(connection, [-1]) == 0
    used = dict(QuotaAccount.objects.filter(pk__in=[a.pk for a in accounts]).values_list("pk", "used"))
    assert used == {accounts[0].pk: 5, accounts[1].pk: accounts[1].limit - 4, accounts[2].pk: 0}


def test_an_update_of_plain_values_is_the_orms(user) -> None:
    conversation = Conversation.objects.create(user=user, title="Hi")
    jobs = [
        AIJob.objects.create(id=uuid.uuid4(), user=user, type=CHAT.value, status=AIJob.Status.PROCESSING, claim_token=t)
        for t in ("", "token", "token")
    ]
    done = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    values = {
        "status": AIJob.Status.COMPLETED,
        "output": {"response": "Bonjour — ça va?", "usage": [1, 2.5, None]},
        "tokens_used": 42,
        "conversation": conversation,
        "completed_at": done,
        "error": "",
    }
    running = {"status": AIJob.Status.PROCESSING, "claim_token": "token"}

    assert rows_update(AIJob, where={"pk": jobs[1].pk, **running}, values=values) == 1
    assert AIJob.objects.filter(pk=jobs[2].pk, **running).update(**values) == 1
    created = {"id", "created_at", "updated_at"}  # set when each was created
    assert _stored(jobs[1], but=created) == _stored(jobs[2], but=created)
    stored = AIJob.objects.get(pk=jobs[1].pk)
    assert stored.output == values["output"]
    assert stored.conversation_id == conversation.pk
    assert stored.completed_at == done

    # A condition that no longer holds changes nothing; an empty string is a value like another.
    assert rows_update(AIJob, where={"pk": jobs[1].pk, **running}, values=values) == 0
    assert rows_update(AIJob, where={"pk": jobs[0].pk, "claim_token": ""}, values={"conversation": None}) == 1
    assert rows_update(AIJob, where={"pk": jobs[1].pk}, values={"conversation": None, "tokens_used": 7}) == 1
    assert AIJob.objects.get(pk=jobs[1].pk).conversation_id is None
    assert AIJob.objects.get(pk=jobs[1].pk).tokens_used == 7


def test_an_update_with_an_expression_goes_through_the_orm(user) -> None:
    job = AIJob.objects.create(id=uuid.uuid4(), user=user, type=CHAT.value, progress=10)
    assert rows_update(AIJob, where={"pk": job.pk}, values={"progress": F("progress") + 5}) == 1
    assert AIJob.objects.get(pk=job.pk).progress == 15
    with pytest.raises(TypeError, match="IS NULL"):
        rows_update(AIJob, where={"conversation": None}, values={"progress": 0})
