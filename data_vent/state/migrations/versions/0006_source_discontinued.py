"""source_observation.discontinued: OOI's table of contents no longer lists the source

Revision ID: 0006_source_discontinued
Revises: 0005_flow_run_id
Create Date: 2026-11-29 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_source_discontinued"
down_revision = "0005_flow_run_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_observation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discontinued", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("source_observation", schema=None) as batch_op:
        batch_op.drop_column("discontinued")
