"""Statements compiled once per database connection and run again with new values.

A few statements run on nearly every request or paid call: the device-session lookup of
authentication, the count of a user's running AI calls, the rows of a search's hits, the quota
charge, and the rows every AI call writes and completes. For them, building and compiling the
queryset cost more than the database's work.

- A query (`query_compile`, `update_compile`) is built once with sentinel values (values no real
  row can hold) where the request's values go; its compiled SQL and parameters are kept per
  connection (one per thread and alias, and the SQL is that vendor's), and each run puts the
  request's values where the sentinels stood. Rows pass through the ORM's own converters, so they
  are what the queryset itself would return.
- A new row (`row_insert`) is inserted with the statement the ORM's insert compiler wrote for its
  model, and plain values under equality conditions (`rows_update`) are written with the one its
  update compiler wrote for that shape; values are converted by the fields themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from weakref import WeakKeyDictionary

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler
from django.db.models.sql.query import Query
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

T = TypeVar("T")
M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: tuple[Any, ...]
    positions: tuple[int, ...]  # where each sentinel's value stands in `params`
    compiler: SQLCompiler  # the compiler that built `sql`: its converters and row layout
    converters: dict[int, Any]

    def _params(self, values: Sequence[Any]) -> list[Any]:
        params = list(self.params)
        for position, value in zip(self.positions, values, strict=True):
            params[position] = value
        return params

    def rows(self, connection: BaseDatabaseWrapper, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows for `values` (database values, in the sentinels' order), converted."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self._params(values))
            rows = cursor.fetchall()
        if self.converters:
            return [tuple(row) for row in self.compiler.apply_converters(rows, self.converters)]
        return rows

    def execute(self, connection: BaseDatabaseWrapper, values: Sequence[Any]) -> int:
        """Run a compiled UPDATE for `values`: the number of rows it changed."""
        # A failed write dooms the surrounding transaction, as the ORM's own writes do.
        with transaction.mark_for_rollback_on_error(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(self.sql, self._params(values))
            return cursor.rowcount


def query_compile(query: Query, connection: BaseDatabaseWrapper, sentinels: Sequence[Any]) -> CompiledQuery:
    """Compile `query`, built with `sentinels` (as database values) where the values go."""
    compiler = query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    params = tuple(params)
    columns = [column[0] for column in compiler.select[0 : compiler.col_count]] if compiler.select else []
    return CompiledQuery(
        sql=sql,
        params=params,
        positions=tuple(params.index(sentinel) for sentinel in sentinels),
        compiler=compiler,
        converters=compiler.get_converters(columns),
    )


def update_compile(
    queryset: QuerySet[Any], connection: BaseDatabaseWrapper, sentinels: Sequence[Any], **values: Any
) -> CompiledQuery:
    """Compile `queryset.update(**values)` (a filtered queryset, no ordering or slicing), built
    with `sentinels` where the values go; run it with `CompiledQuery.execute`."""
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(values)
    query.clear_select_clause()
    return query_compile(query, connection, sentinels)


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


@dataclass(frozen=True)
class CompiledInsert:
    """The INSERT of one new row of a model, as the ORM's insert compiler wrote it."""

    sql: str
    compiler: SQLInsertCompiler
    fields: tuple[Field[Any, Any], ...]
    returning: tuple[Field[Any, Any], ...]
    converters: dict[int, Any]


_inserts: PerConnection[CompiledInsert] = PerConnection()


def _insert_compile(obj: Model, connection: BaseDatabaseWrapper) -> CompiledInsert:
    opts = obj._meta
    if opts.parents:
        raise TypeError(f"{opts.label} inherits from a concrete model: save it with the ORM")
    fields = tuple(field for field in opts.local_concrete_fields if field is not opts.auto_field)
    returning = tuple(opts.db_returning_fields)
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = list(returning)
    [(sql, params)] = compiler.as_sql()
    if len(params) != len(fields):  # a field whose SQL takes other than exactly one parameter
        raise TypeError(f"{opts.label}'s INSERT does not take one parameter per field: save it with the ORM")
    columns = [field.get_col(opts.db_table) for field in returning]
    return CompiledInsert(
        sql=sql, compiler=compiler, fields=fields, returning=returning, converters=compiler.get_converters(columns)
    )


def row_insert(obj: M, *, using: str = DEFAULT_DB_ALIAS) -> M:
    """Insert the new row `obj` (of a model with no concrete parent) as
    `obj.save(force_insert=True)` would: the same statement, the fields' own `pre_save`
    (auto_now) and database conversions, an auto-incremented key read back. The statement is
    compiled once per connection and model. No signals are sent, so it is for models nothing
    listens to, and values must be plain values (no expressions)."""
    connection = connections[using]
    opts = obj._meta
    if obj.pk is None and opts.auto_field is None:  # the key's default, as `save` takes it
        obj.pk = opts.pk.get_pk_value_on_save(obj)
    if opts.db_returning_fields and not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True, using=using)  # SQLite before 3.35: the ORM reads the key its own way
        return obj
    compiled = _inserts.get(connection, type(obj), lambda: _insert_compile(obj, connection))
    compiler = compiled.compiler
    params = []
    for field in compiled.fields:
        value = compiler.pre_save_val(field, obj)
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{field} is an expression: save the row with the ORM")
        params.append(field.get_db_prep_save(value, connection))
    # A failed write dooms the surrounding transaction, as the ORM's own writes do.
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        if compiled.returning:
            for field, value in zip(compiled.returning, _returned(compiled, connection, cursor), strict=True):
                setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = using
    return obj


def _returned(compiled: CompiledInsert, connection: BaseDatabaseWrapper, cursor: Any) -> Sequence[Any]:
    """The values the database generated for the row just inserted (its auto-incremented key)."""
    compiler = compiled.compiler
    # Every backend that can return columns from an INSERT has this; the stubs' base lacks it.
    row = connection.ops.fetch_returned_insert_columns(cursor, compiler.returning_params)  # type: ignore[attr-defined]
    if compiled.converters:
        row = next(iter(compiler.apply_converters([row], compiled.converters)))
    return row


@dataclass(frozen=True)
class CompiledUpdate:
    """An UPDATE of plain values under equality conditions, as the ORM's update compiler wrote it."""

    sql: str
    where: tuple[Field[Any, Any], ...]


_updates: PerConnection[CompiledUpdate] = PerConnection()


def rows_update(
    model: type[Model], *, where: Mapping[str, Any], values: Mapping[str, Any], using: str = DEFAULT_DB_ALIAS
) -> int:
    """`model.objects.filter(**where).update(**values)`: the number of rows changed.

    For equality conditions on concrete fields (or `pk`), none None, and plain values (a related
    row stands for its key), the statement is compiled once per connection and shape (the names,
    and which values are NULL, which the ORM writes into the SQL) and values are converted as the
    ORM's update compiler converts them. Values with an expression go through the ORM."""
    manager = model._base_manager.db_manager(using)
    if any(hasattr(value, "resolve_expression") for value in values.values()):
        return manager.filter(**where).update(**values)
    if any(value is None for value in where.values()):
        raise TypeError("a condition on None is IS NULL: update the rows with the ORM")
    connection = connections[using]
    prepared: list[Any] = []
    for name, value in values.items():
        field = _concrete_field(model, name)
        if hasattr(value, "prepare_database_save"):
            value = value.prepare_database_save(field)
        prepared.append(field.get_db_prep_save(value, connection))
    shape = (model, tuple(where), tuple((name, value is None) for name, value in zip(values, prepared, strict=True)))

    def build() -> CompiledUpdate:
        rows = manager.all()
        for name, value in where.items():  # one condition at a time: their parameters in this order
            rows = rows.filter(**{name: value})
        query = cast(UpdateQuery, rows.query.chain(UpdateQuery))
        query.add_update_values(dict(values))
        sql, params = query.get_compiler(connection=connection).as_sql()
        if len(params) != sum(1 for value in prepared if value is not None) + len(where):
            raise TypeError(f"{model._meta.label}'s UPDATE does not take one parameter per value: use the ORM")
        return CompiledUpdate(sql=sql, where=tuple(_concrete_field(model, name) for name in where))

    compiled = _updates.get(connection, shape, build)
    params = [value for value in prepared if value is not None]
    for field, value in zip(compiled.where, where.values(), strict=True):
        params.append(field.get_db_prep_value(value, connection))
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        return cursor.rowcount


def _concrete_field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete:
        raise TypeError(f"{model._meta.label}.{name} is not a concrete field")
    return field
