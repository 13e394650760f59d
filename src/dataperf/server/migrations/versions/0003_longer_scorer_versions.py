"""Longer scorer versions: a challenge name, its version and the kind's scorer fit in 120

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("rounds", "evaluations")


def upgrade() -> None:
    """Upgrade schema."""
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('scorer_version', existing_type=sa.String(length=32),
                                  type_=sa.String(length=120))


def downgrade() -> None:
    """Downgrade schema."""
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('scorer_version', existing_type=sa.String(length=120),
                                  type_=sa.String(length=32))
