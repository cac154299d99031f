"""dispatch index ends in id: a project's next PENDING jobs in dispatch order are an index range scan

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_dispatch')
        batch_op.create_index('ix_jobs_dispatch', ['status', 'project_id', 'priority', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_dispatch')
        batch_op.create_index('ix_jobs_dispatch', ['status', 'project_id', 'priority', 'created_at'], unique=False)
