"""Idempotency keys of submissions: a client that retries an upload whose answer it lost gets
the submission it made, not a second one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 06:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint('uq_submissions_user_id_idempotency_key',
                                          ['user_id', 'idempotency_key'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_submissions_user_id_idempotency_key', type_='unique')
        batch_op.drop_column('idempotency_key')
