"""Alembic environment: runs on the connection the platform hands over (see ``Database``)."""

from alembic import context

from dataperf.server.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
