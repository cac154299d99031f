"""Structured failures (a step's and a job's error code; a step's hint and failure time), a step's info, and an
event's details

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from jobctl.scheduler.store.models import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=64), nullable=True))
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('error_hint', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('error_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('info', sa.JSON(), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('details', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('details')
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('info')
        batch_op.drop_column('error_at')
        batch_op.drop_column('error_hint')
        batch_op.drop_column('error_code')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('error_code')
