"""deploy leases: deployments owned by a worker under a lease, one in progress per job version;
the `lease` table for singletons (the supervisor)

Revision ID: 0005_deploy_leases
Revises: 0004_pipelines
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_deploy_leases"
down_revision = "0004_pipelines"
branch_labels = None
depends_on = None

IN_PROGRESS = sa.text("status = 'in_progress'")


def upgrade() -> None:
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("step", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("previous_tag", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("previous_target", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("owner", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))

    # Earlier versions could leave several deployments of one version in progress (a crash, then a
    # deploy within the minute): keep the newest in progress, so the unique index below can exist.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, job_name, job_version FROM deployment WHERE status = 'in_progress' ORDER BY create_time DESC"
        )
    ).all()
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.job_name, row.job_version)
        if key in seen:
            connection.execute(
                sa.text(
                    "UPDATE deployment SET status = 'failed', error = 'deployment halted: a later deployment of "
                    "this version replaced it' WHERE id = :id"
                ),
                {"id": row.id},
            )
        seen.add(key)

    op.create_index(
        "uq_deployment_in_progress",
        "deployment",
        ["job_name", "job_version"],
        unique=True,
        sqlite_where=IN_PROGRESS,
        postgresql_where=IN_PROGRESS,
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("lease")
    op.drop_index("uq_deployment_in_progress", table_name="deployment")
    with op.batch_alter_table("deployment", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("owner")
        batch_op.drop_column("previous_target")
        batch_op.drop_column("previous_tag")
        batch_op.drop_column("step")
        batch_op.drop_column("tag")
