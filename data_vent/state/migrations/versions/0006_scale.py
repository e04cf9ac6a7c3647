"""scale-out: call_slot (the shared cap on concurrent calls to OOI), materialization.worker,
run_report (what each run of a fan-out did)

Revision ID: 0006_scale
Revises: 0003_observe_errors
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_scale"
down_revision = "0003_observe_errors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_slot",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "slot"),
    )
    with op.batch_alter_table("call_slot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_slot_owner"), ["owner"], unique=False)
    op.create_table(
        "run_report",
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("parent_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("run_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_report_parent_run_id"), ["parent_run_id"], unique=False
        )
    with op.batch_alter_table("materialization", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("run_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_report_parent_run_id"))
    op.drop_table("run_report")
    with op.batch_alter_table("materialization", schema=None) as batch_op:
        batch_op.drop_column("worker")
    with op.batch_alter_table("call_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_slot_owner"))
    op.drop_table("call_slot")
