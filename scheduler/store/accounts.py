"""Projects, users and their roles: the rows access control reads (`api.auth`) and the admin commands write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import Conflict, Invalid, NotFound
from jobctl.scheduler.records import (
    ProjectRecord,
    UserRecord,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import connection_of, utcnow
from jobctl.scheduler.store.prepared import Prepared


def create_project(session: Session, name: str, max_running: int | None) -> ProjectRecord:
    """A new project; `Conflict` if the name is taken."""
    if session.scalar(select(models.Project.id).where(models.Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists")
    row = models.Project(name=name, max_running=max_running, created_at=utcnow())
    session.add(row)
    session.flush()
    return _project(row)


def get_project(session: Session, name: str) -> ProjectRecord:
    """The project called `name`; `NotFound` otherwise."""
    conn = session.connection()
    rows = _PROJECT.fetch(conn, {"name": name})
    if not rows:
        raise NotFound(f"project {name!r} not found")
    return ProjectRecord(**_PROJECT.reader(conn.dialect, ["id", "name", "max_running", "created_at"])(rows[0]))


_PROJECT = Prepared(
    select(models.Project.id, models.Project.name, models.Project.max_running, models.Project.created_at).where(
        models.Project.name == bindparam("name")
    )
)


def list_projects(session: Session, names: Iterable[str] | None = None) -> list[ProjectRecord]:
    """All projects (or those named), by name."""
    query = select(models.Project).order_by(models.Project.name)
    if names is not None:
        query = query.where(models.Project.name.in_(list(names)))
    return [_project(r) for r in session.scalars(query)]


def project_ids(session: Session, names: Iterable[str]) -> dict[str, int]:
    """The id of each named project that exists, by name (one Core statement: the list API asks on every page)."""
    rows = session.connection().execute(_PROJECT_IDS, {"names": list(names)})
    return {name: project_id for name, project_id in rows}


_PROJECT_IDS = select(models.Project.name, models.Project.id).where(
    models.Project.name.in_(bindparam("names", expanding=True))
)


def _project(row: models.Project) -> ProjectRecord:
    return ProjectRecord(id=row.id, name=row.name, max_running=row.max_running, created_at=row.created_at)


def count_users(session: Session) -> int:
    """How many users exist (0 before the first admin is bootstrapped)."""
    return session.scalar(select(func.count()).select_from(models.User)) or 0


def create_user(session: Session, name: str, token_hash: str, admin: bool) -> int:
    """A new user; `Conflict` if the name is taken. Returns the user's id."""
    if session.scalar(select(models.User.id).where(models.User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    row = models.User(name=name, token_hash=token_hash, admin=admin, created_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def user_by_token_hash(session: Session | Connection, token_hash: str) -> UserRecord | None:
    """The user holding the token with this hash, with their roles; None if no one does. One statement, so it
    may run outside a transaction (`Database.query`): what it reads is one snapshot either way."""
    conn = connection_of(session)
    rows = _USER_BY_TOKEN.fetch(conn, {"token_hash": token_hash})
    if not rows:
        return None
    read = _USER_BY_TOKEN.reader(conn.dialect, ["id", "name", "admin", "project", "role"])
    first = read(rows[0])
    roles = {r["project"]: r["role"] for r in map(read, rows) if r["project"] is not None}
    return UserRecord(id=first["id"], name=first["name"], admin=first["admin"], roles=roles)


_USER_BY_TOKEN = Prepared(
    select(
        models.User.id,
        models.User.name,
        models.User.admin,
        models.Project.name.label("project"),
        models.Role.role,
    )
    .select_from(models.User)
    .outerjoin(models.Role, models.Role.user_id == models.User.id)
    .outerjoin(models.Project, models.Project.id == models.Role.project_id)
    .where(models.User.token_hash == bindparam("token_hash"))
)


def roles_of(session: Session, user_id: int) -> dict[str, str]:
    """The user's role in each project they hold one in, by project name."""
    rows = session.execute(
        select(models.Project.name, models.Role.role)
        .join(models.Role, models.Role.project_id == models.Project.id)
        .where(models.Role.user_id == user_id)
    )
    return {name: role for name, role in rows}


def get_user(session: Session, name: str) -> UserRecord:
    """The user called `name`, with their roles; `NotFound` otherwise."""
    row = session.scalar(select(models.User).where(models.User.name == name))
    if row is None:
        raise NotFound(f"user {name!r} not found")
    return UserRecord(id=row.id, name=row.name, admin=row.admin, roles=roles_of(session, row.id))


def list_users(session: Session) -> list[UserRecord]:
    """Every user with their roles, by name."""
    roles: dict[int, dict[str, str]] = {}
    for user_id, project, role in session.execute(
        select(models.Role.user_id, models.Project.name, models.Role.role).join(
            models.Project, models.Project.id == models.Role.project_id
        )
    ):
        roles.setdefault(user_id, {})[project] = role
    rows = session.scalars(select(models.User).order_by(models.User.name))
    return [UserRecord(id=r.id, name=r.name, admin=r.admin, roles=roles.get(r.id, {})) for r in rows]


ROLES = ("viewer", "operator")


def set_roles(session: Session, user_id: int, roles: Mapping[str, str | None]) -> dict[str, str]:
    """Give the user `role` in each named project, or take their role away where it is None; other projects
    keep what the user holds there. `Invalid` (and nothing changed) if a project does not exist or a role is
    not `viewer` or `operator`. Returns the user's roles afterwards."""
    bad_roles = sorted({r for r in roles.values() if r is not None and r not in ROLES})
    if bad_roles:
        raise Invalid(f"unknown role(s) {', '.join(map(repr, bad_roles))}; use viewer or operator")
    ids = {p.name: p.id for p in list_projects(session, list(roles))}
    unknown = sorted(set(roles) - set(ids))
    if unknown:
        raise Invalid(f"unknown project(s): {', '.join(map(repr, unknown))}")
    held = {
        r.project_id: r
        for r in session.scalars(
            select(models.Role).where(models.Role.user_id == user_id, models.Role.project_id.in_(list(ids.values())))
        )
    }
    for project, role in roles.items():
        row = held.get(ids[project])
        if role is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(models.Role(user_id=user_id, project_id=ids[project], role=role))
        else:
            row.role = role
    session.flush()
    return roles_of(session, user_id)
