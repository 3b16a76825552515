"""Reads of accounts data that sit on the hot path of every authenticated request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.query import get_related_populators

from accounts.models import DeviceSession
from core.compiled_queries import CompiledQuery, PerConnection, query_compile

# Sentinels the statement is compiled with (core.compiled_queries): no real session id or user id.
_SESSION_SENTINEL = uuid.UUID("00000000-0000-4000-8000-5e551017c0de")
_USER_SENTINEL = -7_355_608_113


@dataclass(frozen=True)
class _Prepared:
    """The active-session lookup compiled for one database connection, with how to build its
    models from a row."""

    query: CompiledQuery
    init_list: list[str]
    populators: list
    fields_end: int


_prepared: PerConnection[_Prepared] = PerConnection()


def _prepare(connection: BaseDatabaseWrapper, alias: str) -> _Prepared:
    query = (
        # The quota account rides along: every authenticated response carries X-Quota-* headers.
        DeviceSession.objects.using(alias)
        .select_related("user", "user__quota_account")
        .filter(id=_SESSION_SENTINEL, user_id=_USER_SENTINEL, revoked_at__isnull=True)
        .order_by()[:1]
        .query
    )
    session_value = DeviceSession._meta.pk.get_db_prep_value(_SESSION_SENTINEL, connection)
    compiled = query_compile(query, connection, [session_value, _USER_SENTINEL])
    select, klass_info = compiled.compiler.select, compiled.compiler.klass_info
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    return _Prepared(
        query=compiled,
        init_list=[column[0].target.attname for column in select[start:end]],
        # django-stubs describes Django 6's signature (a `fetch_mode` argument); 5.2 has none.
        populators=get_related_populators(klass_info, select, alias),  # type: ignore[call-arg]
        fields_end=end,
    )


def device_session_get_active(*, session_id: uuid.UUID, user_id: int, using: str = "default") -> DeviceSession | None:
    """The session if it is not revoked, with its user and the user's quota account, in one query.

    The same statement the ORM would run for
    `DeviceSession.objects.select_related("user", "user__quota_account").filter(...).first()`,
    but compiled once per connection instead of per request: building and compiling that
    queryset cost more than running it (about half of an authenticated request in process).
    Rows come back through the ORM's own converters and model construction, so the instances
    are what the queryset would have returned."""
    connection = connections[using]
    prepared = _prepared.get(connection, using, lambda: _prepare(connection, using))
    session_value = DeviceSession._meta.pk.get_db_prep_value(session_id, connection)
    rows = prepared.query.rows(connection, [session_value, user_id])
    if not rows:
        return None
    row = rows[0]
    session = DeviceSession.from_db(using, prepared.init_list, row[0 : prepared.fields_end])
    for populator in prepared.populators:
        populator.populate(row, session)
    return session
