"""observe_error: sources whose latest observation failed

Revision ID: 0003_observe_errors
Revises: 0006_source_discontinued
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_observe_errors"
down_revision = "0006_source_discontinued"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observe_error",
        sa.Column("source_key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("error_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source_key"),
    )


def downgrade() -> None:
    op.drop_table("observe_error")
