"""Alembic environment: runs on the connection the platform hands over (see ``Database``).

On SQLite a batch migration rebuilds a table (copy, drop, rename), and with foreign keys
enforced, dropping a table that other rows refer to fails. So they are off while migrating (set
outside any transaction: the pragma does nothing inside one) and each migration checks every
reference before it commits.
"""

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection

from dataperf.server.models import Base

connection: Connection = context.config.attributes["connection"]
sqlite = connection.dialect.name == "sqlite"


def _foreign_keys(on: bool) -> None:
    cursor = connection.connection.cursor()  # the driver's, with no transaction open
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _check_references(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any],
                      run_args: Mapping[str, Any]) -> None:
    if broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all():
        raise RuntimeError(f"after migration {step.up_revision_id} rows refer to missing rows "
                           f"(table, rowid, parent, key): {broken[:10]}")


if sqlite:
    _foreign_keys(False)
try:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=sqlite,
                      on_version_apply=_check_references if sqlite else None)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite and connection.in_transaction():
        connection.commit()  # as Database.migrate would: the pragma below needs none open
finally:
    if sqlite:
        _foreign_keys(True)
