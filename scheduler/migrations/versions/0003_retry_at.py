"""retry_at on jobs and steps and steps.failures (a failed step waits for its retry delay with its job PENDING); jobs.exclusive
(a job of an exclusive type does not start while another job on its target is RUNNING)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from jobctl.scheduler.store.models import UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('exclusive', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('failures')
        batch_op.drop_column('retry_at')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('exclusive')
        batch_op.drop_column('retry_at')
