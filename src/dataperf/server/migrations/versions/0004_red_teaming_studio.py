"""Red-teaming studio: consents, generations (a leased job per prompt), attacks, raters and
their validations; a round's generators and k; studio submissions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 06:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dataperf.server.models import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ('queued', 'running', 'scored', 'done', 'failed_participant', 'failed_platform', 'cancelled')
ATTACK_STATES = ('pending', 'validated', 'hidden', 'removed')


def _leased_job_columns() -> list[sa.Column]:
    return [
        sa.Column('state', sa.Enum(*STATES, name='state', native_enum=False, length=24),
                  nullable=False),
        sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('lease_owner', sa.String(length=120), nullable=True),
        sa.Column('lease_expires_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('progress', sa.JSON(), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('queued_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generators', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('validations', sa.Integer(), nullable=True))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_studio', sa.Boolean(), server_default='0',
                                      nullable=False))
    op.create_table(
        'consents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('challenge_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'],
                                name=op.f('fk_consents_challenge_id_challenges')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consents_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
        sa.UniqueConstraint('user_id', 'challenge_id', name=op.f('uq_consents_user_id')),
    )
    op.create_table(
        'generations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('prompt', sa.Text(), nullable=False),
        sa.Column('prompt_key', sa.String(length=64), nullable=False),
        sa.Column('seed', sa.BigInteger(), nullable=False),
        sa.Column('screening', sa.JSON(), nullable=True),
        sa.Column('images', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        *_leased_job_columns(),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'],
                                name=op.f('fk_generations_round_id_rounds')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_generations_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_generations')),
        sa.UniqueConstraint('round_id', 'user_id', 'prompt_key',
                            name=op.f('uq_generations_round_id')),
    )
    op.create_index(op.f('ix_generations_round_id'), 'generations', ['round_id'])
    op.create_index('ix_generations_state_priority_id', 'generations',
                    ['state', 'priority', 'id'])
    op.create_index('ix_generations_user_created', 'generations', ['user_id', 'created_at'])
    op.create_table(
        'attacks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation_id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('image', sa.Integer(), nullable=False),
        sa.Column('annotations', sa.JSON(), nullable=False),
        sa.Column('state', sa.Enum(*ATTACK_STATES, name='attackstate', native_enum=False,
                                   length=24), nullable=False),
        sa.Column('moderation_reason', sa.Text(), nullable=True),
        sa.Column('gold', sa.JSON(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['generation_id'], ['generations.id'],
                                name=op.f('fk_attacks_generation_id_generations')),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'],
                                name=op.f('fk_attacks_round_id_rounds')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_attacks_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attacks')),
        sa.UniqueConstraint('generation_id', 'image', name=op.f('uq_attacks_generation_id')),
    )
    op.create_index(op.f('ix_attacks_round_id'), 'attacks', ['round_id'])
    op.create_index(op.f('ix_attacks_user_id'), 'attacks', ['user_id'])
    op.create_table(
        'raters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('challenge_id', sa.Integer(), nullable=False),
        sa.Column('granted_by', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('excluded_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('excluded_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'],
                                name=op.f('fk_raters_challenge_id_challenges')),
        sa.ForeignKeyConstraint(['granted_by'], ['users.id'],
                                name=op.f('fk_raters_granted_by_users')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_raters_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_raters')),
        sa.UniqueConstraint('user_id', 'challenge_id', name=op.f('uq_raters_user_id')),
    )
    op.create_table(
        'validations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('attack_id', sa.Integer(), nullable=False),
        sa.Column('rater_id', sa.Integer(), nullable=False),
        sa.Column('assigned_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('text_safety', sa.String(length=8), nullable=True),
        sa.Column('image_safety', sa.String(length=8), nullable=True),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('answered_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.Column('excluded', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['attack_id'], ['attacks.id'],
                                name=op.f('fk_validations_attack_id_attacks')),
        sa.ForeignKeyConstraint(['rater_id'], ['users.id'],
                                name=op.f('fk_validations_rater_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_validations')),
        sa.UniqueConstraint('attack_id', 'rater_id', name=op.f('uq_validations_attack_id')),
    )
    op.create_index(op.f('ix_validations_attack_id'), 'validations', ['attack_id'])
    op.create_index('ix_validations_rater_answered', 'validations', ['rater_id', 'answered_at'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('validations')
    op.drop_table('raters')
    op.drop_table('attacks')
    op.drop_table('generations')
    op.drop_table('consents')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('is_studio')
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('validations')
        batch_op.drop_column('generators')
