"""compat-lifecycle: the exact source of every deployment and of the serving build (a git commit, or
a content digest of the uploaded build context); async job calls and their results

Revision ID: 0006_compat_lifecycle_src_async
Revises: 0005_deploy_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_compat_lifecycle_src_async"
down_revision = "0005_deploy_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.String(length=80), nullable=True))
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.String(length=80), nullable=True))
    op.create_table(
        "async_job_call",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_name", sa.String(length=128), nullable=False),
        sa.Column("job_version", sa.String(length=128), nullable=False),
        sa.Column("job_path", sa.Text(), nullable=False),
        sa.Column("http_method", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=256), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_async_job_call_started_at", "async_job_call", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_async_job_call_started_at", table_name="async_job_call")
    op.drop_table("async_job_call")
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_column("source_version")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("source_version")
