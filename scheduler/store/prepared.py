"""Core statements compiled once per dialect and run on the driver's cursor, for the per-step hot path.

SQLAlchemy still writes the SQL (from the typed models) and converts the values (each column type's own bind
and result processors for the dialect). What a `Prepared` statement skips is the work around them on every
call: the cache-key lookup, the execution context and the result object, which were most of a small
statement's cost on the hand-over path. It runs in the caller's transaction, on the driver connection that
the caller's `Connection` holds, so the transaction, the pool and the SQLite write lock stay SQLAlchemy's; a
driver error is raised as SQLAlchemy's `DBAPIError`, and a lost connection is invalidated, as
`Connection.execute` does (`connection_invalidated` tells the caller it may retry).

On psycopg the statement is compiled with PostgreSQL's own `$n` placeholders and run on a `RawCursor`, so
the driver does not parse the SQL for placeholders on every call (it caches that parse only for statements
under 4 KiB; the one-statement hand-over is larger).

Only for statements whose shape never changes: no expanding IN lists. Everything else uses
`Connection.execute`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None
Reader = Callable[[Sequence[Any]], dict[str, Any]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: Sequence[str] | None  # positional paramstyles: the parameters' names in order; None: by name
    defaults: Mapping[str, Any]  # values fixed in the statement, such as `.values(status="FINISHED")`
    binds: Sequence[tuple[str, Processor]]  # the parameters that have a bind processor
    columns: Mapping[str, int]  # a SELECT's result columns: label -> position
    types: Sequence[Any]  # and their SQLAlchemy types, by position
    raw: bool  # `$n` placeholders, for psycopg's RawCursor
    results: list[Processor] = field(default_factory=list)  # their result processors, once a fetch described them


class Prepared:
    """A statement run as `run(conn, params)` (a write: how many rows it changed) or `fetch(conn, params)`."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        self._readers: dict[tuple[str, tuple[str, ...], str], Reader] = {}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute with `params` (by bind parameter name) in `conn`'s transaction; the driver's row count."""
        compiled = self._compiled(conn.dialect)
        cursor = self._execute(conn, compiled, self._args(compiled, params))
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    @staticmethod
    def _args(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        values = {**compiled.defaults, **params}
        for name, process in compiled.binds:
            value = values.get(name)
            if value is not None:
                values[name] = process(value)  # type: ignore[misc]
        return values if compiled.names is None else [values[name] for name in compiled.names]

    @staticmethod
    def _execute(conn: Connection, compiled: _Compiled, args: Any) -> Any:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cursor = _raw_cursor(dbapi) if compiled.raw else dbapi.cursor()
        try:
            cursor.execute(compiled.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            lost = conn.dialect.is_disconnect(exc, dbapi, cursor)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql,
                args,
                exc,
                conn.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        return cursor

    def fetch(self, conn: Connection, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """A SELECT's rows as the driver returns them (unconverted: see `reader`)."""
        compiled = self._compiled(conn.dialect)
        cursor = self._execute(conn, compiled, self._args(compiled, params))
        try:
            if not compiled.results:  # some processors depend on the driver's column type (PostgreSQL's numerics)
                compiled.results[:] = [
                    kind.dialect_impl(conn.dialect).result_processor(conn.dialect, described[1])
                    for kind, described in zip(compiled.types, cursor.description, strict=True)
                ]
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def reader(self, dialect: Dialect, labels: Sequence[str], prefix: str = "") -> Reader:
        """A function that turns a row that `fetch` returned into {label: value} for `labels` (each selected as
        `prefix + label`), converted by the column types, as the ORM would load them. Made once per dialect."""
        key = (dialect.name, tuple(labels), prefix)
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = self._reader(dialect, labels, prefix)
        return reader

    def _reader(self, dialect: Dialect, labels: Sequence[str], prefix: str) -> Reader:
        compiled = self._compiled(dialect)
        positions = [(label, compiled.columns[prefix + label]) for label in labels]
        picked: list[tuple[str, int, Processor]] = []

        def read(row: Sequence[Any]) -> dict[str, Any]:
            if not picked:
                picked.extend((label, at, compiled.results[at]) for label, at in positions)
            out = {}
            for label, position, process in picked:
                value = row[position]
                out[label] = value if process is None or value is None else process(value)
            return out

        return read

    def position(self, dialect: Dialect, label: str) -> int:
        """Where the column labelled `label` is in a fetched row."""
        return self._compiled(dialect).columns[label]

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _compile(self.statement, dialect)
        return compiled


class Writes:
    """Single-row writes (UPDATE or INSERT statements) run together: on PostgreSQL as one statement, each write a
    data-modifying CTE (all run, whether or not they change a row), in one round trip; elsewhere one after
    another. Their parameters share one namespace: a name two of them use must mean the same value there.
    `also`, PostgreSQL only: an expression evaluated in the same statement (a lock to take with the writes)."""

    def __init__(self, *writes: Prepared, also: Any = None) -> None:
        self.writes = writes
        counts = []
        for i, write in enumerate(writes):
            statement: Any = write.statement
            cte = statement.returning(*statement.table.primary_key.columns).cte(f"write{i}")
            counts.append(select(func.count()).select_from(cte).scalar_subquery())
        self._together = Prepared(select(*counts, *([] if also is None else [also])))

    def run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[int, ...]:
        """Run every write with `params`; how many rows each changed."""
        if conn.dialect.name == "postgresql":
            return tuple(self._together.fetch(conn, params)[0][: len(self.writes)])
        return tuple(write.run(conn, params) for write in self.writes)


def _raw_cursor(dbapi_connection: Any) -> Any:
    from psycopg import RawCursor  # here, not at the top: only a PostgreSQL connection gets this far

    return RawCursor(dbapi_connection)


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    raw = dialect.driver == "psycopg"
    # The SQL alone comes from a `$n` twin of the dialect (a repeated parameter keeps one number); values are
    # still converted by the engine's own dialect.
    writer = type(dialect)(paramstyle="numeric_dollar") if raw else dialect  # type: ignore[call-arg]
    compiled = statement.compile(dialect=writer)  # type: ignore[attr-defined]
    binds = []
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds.append((name, process))
    defaults = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
    selected = list(getattr(statement, "selected_columns", ()))
    columns = {column.key: position for position, column in enumerate(selected)}
    names = list(compiled.positiontup) if compiled.positional else None
    return _Compiled(compiled.string, names, defaults, binds, columns, [column.type for column in selected], raw=raw)
