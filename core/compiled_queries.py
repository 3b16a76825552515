"""Querysets compiled once per database connection and run again with new values.

A few reads run on nearly every request: the device-session lookup of authentication, the count
of a user's running AI calls, the rows of a search's hits. For them, building and compiling the
queryset cost more than the database's work. Such a queryset is built once with sentinel values
(values no real row can hold) where the request's values go; its compiled SQL and parameters are
kept per connection (one per thread and alias, and the SQL is that vendor's), and each run puts
the request's values where the sentinels stood. Rows pass through the ORM's own converters, so
they are what the queryset itself would return.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query

T = TypeVar("T")


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: tuple[Any, ...]
    positions: tuple[int, ...]  # where each sentinel's value stands in `params`
    compiler: SQLCompiler  # the compiler that built `sql`: its converters and row layout
    converters: dict[int, Any]

    def rows(self, connection: BaseDatabaseWrapper, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows for `values` (database values, in the sentinels' order), converted."""
        params = list(self.params)
        for position, value in zip(self.positions, values, strict=True):
            params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return rows


def query_compile(query: Query, connection: BaseDatabaseWrapper, sentinels: Sequence[Any]) -> CompiledQuery:
    """Compile `query`, built with `sentinels` (as database values) where the values go."""
    compiler = query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    params = tuple(params)
    columns = [column[0] for column in compiler.select[0 : compiler.col_count]]
    return CompiledQuery(
        sql=sql,
        params=params,
        positions=tuple(params.index(sentinel) for sentinel in sentinels),
        compiler=compiler,
        converters=compiler.get_converters(columns),
    )


class PerConnection(Generic[T]):
    """What was compiled for each database connection, by key; dropped with the connection."""

    def __init__(self) -> None:
        self._compiled: WeakKeyDictionary[BaseDatabaseWrapper, dict[Hashable, T]] = WeakKeyDictionary()

    def get(self, connection: BaseDatabaseWrapper, key: Hashable, build: Callable[[], T]) -> T:
        per_connection = self._compiled.setdefault(connection, {})
        found = per_connection.get(key)
        if found is None:
            found = per_connection[key] = build()
        return found
