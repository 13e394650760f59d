"""Superseded studio scorings (a participant's newer scoring replaces the older on the
leaderboard); a red-teaming round's image retention; failed logins, shared by the replicas

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dataperf.server.models import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=320), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index(op.f('ix_login_failures_key'), 'login_failures', ['key'])
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_superseded', sa.Boolean(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_retention_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_login_failures_key'), table_name='login_failures')
    op.drop_table('login_failures')
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('image_retention_days')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('is_superseded')
