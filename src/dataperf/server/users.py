"""Creating users outside the API (the operator's first admin, scripted setups)."""

from __future__ import annotations

from sqlalchemy import select

from dataperf.exceptions import DataPerfError
from dataperf.server.db import Database
from dataperf.server.models import Role, Team, User
from dataperf.server.security import hash_password, password_problem


def upsert_user(db: Database, email: str, name: str, password: str, role: str) -> bool:
    """Create the user with a team of one (True), or update role and password (False)."""
    if role not in Role.__members__:
        raise DataPerfError(f"unknown role {role!r}; roles: {', '.join(Role.__members__)}")
    email = email.strip().lower()
    if "@" not in email:
        raise DataPerfError(f"{email!r} is not an email address")
    problem = password_problem(password, email=email, name=name)
    if problem:
        raise DataPerfError(problem)
    password_hash = hash_password(password)
    with db.write() as session:
        user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if user is not None:
            user.role, user.password_hash = Role(role), password_hash
            return False
        team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
        if team is not None:
            raise DataPerfError(f"a team named {name!r} exists; pick another --name")
        session.add(User(email=email, name=name, password_hash=password_hash, role=Role(role),
                         team=Team(name=name)))
    return True
