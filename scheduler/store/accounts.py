"""Projects, users and their roles: the rows access control reads (`api.auth`) and the admin commands write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import Conflict, Invalid, NotFound
from jobctl.scheduler.records import (
    ProjectRecord,
    TokenRecord,
    UserRecord,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import connection_of, utcnow
from jobctl.scheduler.store.prepared import Prepared
from jobctl.states import NON_FINAL


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


def update_project(session: Session, name: str, max_running: int | None) -> ProjectRecord:
    """Set the project's limit of RUNNING jobs (None: the default); the scheduler's next pass applies it.
    `NotFound` if there is no such project."""
    row = session.scalar(select(models.Project).where(models.Project.name == name))
    if row is None:
        raise NotFound(f"project {name!r} not found")
    row.max_running = max_running
    session.flush()
    return _project(row)


def delete_project(session: Session, name: str) -> None:
    """Delete the project with its final jobs, targets and roles. `Conflict` (nothing deleted) while it holds a
    job that is not final: discard or finish those first. `NotFound` if there is no such project."""
    project = get_project(session, name)
    unfinished = session.scalar(
        select(func.count())
        .select_from(models.Job)
        .where(models.Job.project_id == project.id, models.Job.status.in_([s.value for s in NON_FINAL]))
    )
    if unfinished:
        raise Conflict(f"project {name!r} still holds {unfinished} job(s) that are not final; discard them first")
    session.execute(delete(models.Project).where(models.Project.id == project.id))


def count_users(session: Session) -> int:
    """How many users exist (0 before the first admin is bootstrapped)."""
    return session.scalar(select(func.count()).select_from(models.User)) or 0


DEFAULT_TOKEN = "default"  # the name of the token a user is created with


def create_user(session: Session, name: str, token_hash: str, admin: bool, prefix: str = "") -> int:
    """A new user holding one token, named `default` (`token_hash` and its first characters `prefix`);
    `Conflict` if the name is taken. Returns the user's id."""
    if session.scalar(select(models.User.id).where(models.User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    row = models.User(name=name, admin=admin, created_at=utcnow())
    session.add(row)
    session.flush()
    create_token(session, row.id, DEFAULT_TOKEN, token_hash, prefix, expires_at=None)
    return row.id


@dataclass(frozen=True)
class SignIn:
    """Who a token belongs to, and the token's own row: `token_id` and when it was last used (None: never)."""

    user: UserRecord
    token_id: int
    last_used_at: datetime | None


USE_RECORDED_EVERY_S = 60.0  # a token's `last_used_at` is written at most this often


def sign_in(session: Session | Connection, token_hash: str, now: datetime | None = None) -> SignIn | None:
    """The user holding the token with this hash, with their roles, if the token is valid: it exists, has not
    expired by `now` (default: the current time) and its user is not disabled. None otherwise, whichever the
    reason. One statement, so it may run outside a transaction (`Database.query`): what it reads is one snapshot
    either way. Each request reads it afresh: a revoked token, a disabled user or a removed role takes effect on
    the very next request, on every API process."""
    conn = connection_of(session)
    rows = _SIGN_IN.fetch(conn, {"token_hash": token_hash})
    if not rows:
        return None
    read = _SIGN_IN.reader(
        conn.dialect, ["id", "name", "admin", "disabled", "token_id", "last_used_at", "expires_at", "project", "role"]
    )
    first = read(rows[0])
    expires_at = first["expires_at"]
    if first["disabled"] or (expires_at is not None and expires_at <= (now or utcnow())):
        return None
    roles = {r["project"]: r["role"] for r in map(read, rows) if r["project"] is not None}
    user = UserRecord(id=first["id"], name=first["name"], admin=first["admin"], roles=roles)
    return SignIn(user=user, token_id=first["token_id"], last_used_at=first["last_used_at"])


def user_by_token_hash(session: Session | Connection, token_hash: str) -> UserRecord | None:
    """`sign_in`'s user: the holder of this valid token, or None."""
    signed_in = sign_in(session, token_hash)
    return None if signed_in is None else signed_in.user


_SIGN_IN = Prepared(
    select(
        models.User.id,
        models.User.name,
        models.User.admin,
        models.User.disabled,
        models.Token.id.label("token_id"),
        models.Token.last_used_at,
        models.Token.expires_at,
        models.Project.name.label("project"),
        models.Role.role,
    )
    .select_from(models.Token)
    .join(models.User, models.User.id == models.Token.user_id)
    .outerjoin(models.Role, models.Role.user_id == models.User.id)
    .outerjoin(models.Project, models.Project.id == models.Role.project_id)
    .where(models.Token.token_hash == bindparam("token_hash"))
)


def needs_use(signed_in: SignIn, now: datetime) -> bool:
    """Whether the token's `last_used_at` is older than `USE_RECORDED_EVERY_S` (or was never written): only then
    is `record_use` worth its write."""
    last = signed_in.last_used_at
    return last is None or now - last >= timedelta(seconds=USE_RECORDED_EVERY_S)


def record_use(conn: Connection, token_id: int, now: datetime) -> None:
    """Record that the token was used at `now`."""
    conn.execute(update(models.Token).where(models.Token.id == token_id).values(last_used_at=now))


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
    row = _user_row(session, name)
    return UserRecord(id=row.id, name=row.name, admin=row.admin, roles=roles_of(session, row.id), disabled=row.disabled)


def _user_row(session: Session, name: str) -> models.User:
    row = session.scalar(select(models.User).where(models.User.name == name))
    if row is None:
        raise NotFound(f"user {name!r} not found")
    return row


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
    return [
        UserRecord(id=r.id, name=r.name, admin=r.admin, roles=roles.get(r.id, {}), disabled=r.disabled) for r in rows
    ]


def update_user(session: Session, name: str, *, disabled: bool | None = None, admin: bool | None = None) -> UserRecord:
    """Disable or enable the user, or give or take the admin flag (None: leave it). A disabled user's every token
    is refused from the next request on. `Conflict` (nothing changed) if no enabled admin would be left;
    `NotFound` if there is no such user."""
    row = _user_row(session, name)
    if disabled is not None:
        row.disabled = disabled
    if admin is not None:
        row.admin = admin
    session.flush()
    _keep_an_admin(session, f"user {name!r} is the last enabled administrator")
    return get_user(session, name)


def delete_user(session: Session, name: str) -> None:
    """Delete the user with their tokens and roles (their jobs keep their name as the submitter). `Conflict`
    (nothing deleted) if no enabled admin would be left; `NotFound` if there is no such user."""
    row = _user_row(session, name)
    session.execute(delete(models.User).where(models.User.id == row.id))
    _keep_an_admin(session, f"user {name!r} is the last enabled administrator")


def _keep_an_admin(session: Session, message: str) -> None:
    """`Conflict` unless an enabled admin is left (the caller's transaction then rolls its change back)."""
    left = session.scalar(
        select(func.count()).select_from(models.User).where(models.User.admin, models.User.disabled.is_(False))
    )
    if not left:
        raise Conflict(f"{message}: make another user an administrator first")


# ------------------------------------------------------------------------------------------------ tokens


def create_token(
    session: Session, user_id: int, name: str, token_hash: str, prefix: str, expires_at: datetime | None
) -> TokenRecord:
    """Give the user another token, stored as its hash. `Conflict` if they already hold one of that name."""
    taken = session.scalar(select(models.Token.id).where(models.Token.user_id == user_id, models.Token.name == name))
    if taken is not None:
        raise Conflict(f"a token named {name!r} already exists for this user; revoke it or choose another name")
    row = models.Token(
        user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=utcnow(), expires_at=expires_at
    )
    session.add(row)
    session.flush()
    return _token(row)


def list_tokens(session: Session, user_id: int) -> list[TokenRecord]:
    """The user's tokens, by name: never their values or hashes."""
    rows = session.scalars(select(models.Token).where(models.Token.user_id == user_id).order_by(models.Token.name))
    return [_token(r) for r in rows]


def revoke_token(session: Session, user_id: int, name: str) -> None:
    """Delete the user's token called `name`: it is refused from the next request on. `NotFound` if none."""
    result = session.execute(delete(models.Token).where(models.Token.user_id == user_id, models.Token.name == name))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"token {name!r} not found")


def replace_token(session: Session, user_id: int, name: str, token_hash: str, prefix: str) -> bool:
    """Make the user's token `name` hold `token_hash` (the old value stops working), if the token exists and
    holds another; True if it changed."""
    result = session.execute(
        update(models.Token)
        .where(models.Token.user_id == user_id, models.Token.name == name, models.Token.token_hash != token_hash)
        .values(token_hash=token_hash, prefix=prefix, created_at=utcnow(), last_used_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _token(row: models.Token) -> TokenRecord:
    return TokenRecord(
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


# ------------------------------------------------------------------------------------------------ roles

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
