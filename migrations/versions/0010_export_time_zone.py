"""the time zone a queued export's PDF says its moments in

Revision ID: 0010_export_time_zone
Revises: 0009_time_zone
Create Date: 2026-12-07 21:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010_export_time_zone'
down_revision = '0009_time_zone'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('export_jobs', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
