"""grading lanes: GPU jobs wait for workers with GPU slots; live workers say what they take

Revision ID: 0011_grading_lanes
Revises: 0010_export_time_zone
Create Date: 2026-12-07 22:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011_grading_lanes'
down_revision = '0010_export_time_zone'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grading_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.String(length=8), server_default='cpu', nullable=False))
    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gpu_on_cpu', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'worker_processes',
        sa.Column('id', sa.String(length=100), nullable=False),
        sa.Column('host', sa.String(length=100), nullable=False),
        sa.Column('lanes', sa.String(length=32), nullable=False),
        sa.Column('gpu_slots', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_processes')),
    )
    with op.batch_alter_table('worker_processes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_processes_seen_at'), ['seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('worker_processes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_processes_seen_at'))
    op.drop_table('worker_processes')
    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.drop_column('gpu_on_cpu')
    with op.batch_alter_table('grading_jobs', schema=None) as batch_op:
        batch_op.drop_column('lane')
