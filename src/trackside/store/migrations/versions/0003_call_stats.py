"""call stats: per-minute job call counts reported by gateways (dashboard charts)

Revision ID: 0003_call_stats
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_call_stats"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_call_minute",
        sa.Column("gateway_id", sa.String(length=64), nullable=False),
        sa.Column("job_name", sa.String(length=128), nullable=False),
        sa.Column("job_version", sa.String(length=128), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("seconds_sum", sa.Float(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", "job_name", "job_version", "minute"),
    )
    with op.batch_alter_table("job_call_minute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_call_minute_minute"), ["minute"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_call_minute", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_call_minute_minute"))
    op.drop_table("job_call_minute")
