"""Baselines run after participants: an evaluation priority

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:50:47.692269

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_index(batch_op.f('ix_evaluations_state_id'))
        batch_op.create_index('ix_evaluations_state_priority_id', ['state', 'priority', 'id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluations_state_priority_id')
        batch_op.create_index(batch_op.f('ix_evaluations_state_id'), ['state', 'id'], unique=False)
        batch_op.drop_column('priority')

