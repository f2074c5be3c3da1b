"""the time zone a person reads dates in

Revision ID: 0009_time_zone
Revises: 0008_lifecycle
Create Date: 2026-12-07 18:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009_time_zone'
down_revision = '0008_lifecycle'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
