"""compat-lifecycle: the exact source of every deployment and of the serving build (a git commit, or
a content digest of the uploaded build context)

Revision ID: 0006_compat_lifecycle_sources
Revises: 0005_deploy_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_compat_lifecycle_sources"
down_revision = "0005_deploy_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.String(length=80), nullable=True))
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_column("source_version")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("source_version")
