"""materialization.flow_run_id: Prefect's flow-run id beside data-vent's run id

An operator goes from a failed row of `history` to the flow run's logs in Prefect. Nullable:
runs outside Prefect (tests, `ingest`) and every row written before have none.

Revision ID: 0005_flow_run_id
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_flow_run_id"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("materialization") as batch:
        batch.add_column(sa.Column("flow_run_id", sa.String(length=64), nullable=True))
        batch.create_index("ix_materialization_flow_run_id", ["flow_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("materialization") as batch:
        batch.drop_index("ix_materialization_flow_run_id")
        batch.drop_column("flow_run_id")
