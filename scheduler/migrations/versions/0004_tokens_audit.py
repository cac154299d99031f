"""Named tokens with expiry (`tokens`, filled with each user's existing token as `default`), `users.disabled`,
and the audit log (`audit`)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from jobctl.scheduler.store.models import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
        sa.Column('expires_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_tokens_user_id_users'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_tokens_token_hash')),
        sa.UniqueConstraint('user_id', 'name', name=op.f('uq_tokens_user_id')),
    )
    # Each user's one token so far becomes their token `default` (its first characters are not known).
    op.execute(
        "INSERT INTO tokens (user_id, name, token_hash, prefix, created_at) "
        "SELECT id, 'default', token_hash, '', created_at FROM users"
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_token_hash', type_='unique')
        batch_op.drop_column('token_hash')
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'audit',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=600), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit')),
    )
    op.create_index(op.f('ix_audit_at'), 'audit', ['at'], unique=False)
    op.create_index(op.f('ix_audit_actor'), 'audit', ['actor'], unique=False)
    op.create_index(op.f('ix_audit_action'), 'audit', ['action'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_action'), table_name='audit')
    op.drop_index(op.f('ix_audit_actor'), table_name='audit')
    op.drop_index(op.f('ix_audit_at'), table_name='audit')
    op.drop_table('audit')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('disabled')
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
    # Back to one token per user: the `default` one, else the newest (a user left with none can't sign in).
    op.execute(
        "UPDATE users SET token_hash = (SELECT t.token_hash FROM tokens t WHERE t.user_id = users.id "
        "ORDER BY CASE WHEN t.name = 'default' THEN 0 ELSE 1 END, t.id DESC LIMIT 1)"
    )
    op.execute("UPDATE users SET token_hash = 'revoked:' || id WHERE token_hash IS NULL")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('token_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_users_token_hash', ['token_hash'])
    op.drop_table('tokens')
