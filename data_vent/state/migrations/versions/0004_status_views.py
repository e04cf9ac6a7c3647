"""status views: the one definition of harvest status, readable by any SQL client

Adds each asset's freshness policy (``freshness_warn_seconds``, ``freshness_fail_seconds``:
the thresholds on harvest lag, NULL for none) so that freshness can be computed from the
state DB alone, and the view ``stream_status``: one row per active materialized asset with
its store coverage, its source's end, harvest lag, source lag, freshness state (the
planner's ``freshness_of``: DISCONTINUED when OOI no longer lists the source; UNKNOWN, with
the error and no lags, when the source's latest observation failed; UNKNOWN when the source
or store end is unknown; else PASS/WARN/FAIL on harvest lag), last attempt and last error,
and the open OOI request it waits on. ``data-vent status`` reads this view,
so the CLI, ``status --json`` and a SQL client give the same answer.

The SQL is spelled per dialect only where SQLite and PostgreSQL differ (time differences
and "now"); everything else is the same text. All times are naive UTC.

A later migration that recreates a table this view reads (SQLite batch mode) must drop the
view first and create it again afterwards: SQLite refuses to rename a table under a view.

Revision ID: 0004_status_views
Revises: 0006_scale
Create Date: 2026-11-30 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_status_views"
down_revision = "0006_scale"
branch_labels = None
depends_on = None

DEFAULT_WARN_SECONDS = 6 * 3600.0
DEFAULT_FAIL_SECONDS = 86400.0


def _seconds_between(later: str, earlier: str, dialect: str) -> str:
    """``later - earlier`` in (fractional) seconds; ``now`` is the current UTC time."""
    if dialect == "sqlite":
        later = "'now'" if later == "now" else later
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    later = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')" if later == "now" else later
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


def _whole_seconds(expr: str) -> str:
    """A lag in whole seconds, never negative (a store ahead of its source is not late)."""
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} <= 0 THEN 0 "
        f"ELSE CAST(ROUND({expr}) AS BIGINT) END"
    )


def stream_status_sql(dialect: str) -> str:
    harvest = _seconds_between("o.end_time", "s.time_max", dialect)
    source = _seconds_between("now", "o.end_time", dialect)
    false = "0" if dialect == "sqlite" else "FALSE"
    return f"""
CREATE VIEW stream_status AS
SELECT
    b.key AS key,
    b.kind AS kind,
    b.group_name AS group_name,
    b.last_success_at AS last_success_at,
    b.store_begin AS store_begin,
    b.store_end AS store_end,
    b.store_rows AS store_rows,
    b.source_key AS source_key,
    b.source_end AS source_end,
    CASE WHEN b.observe_error IS NOT NULL AND NOT b.source_discontinued THEN NULL
         ELSE {_whole_seconds("b.harvest_diff")} END AS harvest_lag_seconds,
    CASE WHEN b.observe_error IS NOT NULL AND NOT b.source_discontinued THEN NULL
         ELSE {_whole_seconds("b.source_diff")} END AS source_lag_seconds,
    CASE
        WHEN b.source_key IS NULL THEN NULL
        WHEN b.source_discontinued THEN 'DISCONTINUED'
        WHEN b.observe_error IS NOT NULL THEN 'UNKNOWN'
        WHEN b.source_end IS NULL OR b.store_end IS NULL THEN 'UNKNOWN'
        WHEN b.freshness_fail_seconds IS NOT NULL
             AND b.harvest_diff > b.freshness_fail_seconds THEN 'FAIL'
        WHEN b.freshness_warn_seconds IS NOT NULL
             AND b.harvest_diff > b.freshness_warn_seconds THEN 'WARN'
        ELSE 'PASS'
    END AS freshness,
    b.freshness_warn_seconds AS freshness_warn_seconds,
    b.freshness_fail_seconds AS freshness_fail_seconds,
    b.observe_error AS observe_error,
    b.observe_failed_at AS observe_failed_at,
    b.last_attempt_status AS last_attempt_status,
    b.last_attempt_at AS last_attempt_at,
    b.last_error AS last_error,
    b.request_id AS request_id,
    b.request_status AS request_status,
    b.request_since AS request_since
FROM (
    SELECT
        a.key AS key,
        a.kind AS kind,
        a.group_name AS group_name,
        a.freshness_warn_seconds AS freshness_warn_seconds,
        a.freshness_fail_seconds AS freshness_fail_seconds,
        s.finished_at AS last_success_at,
        s.time_min AS store_begin,
        s.time_max AS store_end,
        s.rows AS store_rows,
        src.source_key AS source_key,
        o.end_time AS source_end,
        COALESCE(o.discontinued, {false}) AS source_discontinued,
        oe.error AS observe_error,
        oe.failed_at AS observe_failed_at,
        {harvest} AS harvest_diff,
        {source} AS source_diff,
        t.status AS last_attempt_status,
        t.finished_at AS last_attempt_at,
        t.error AS last_error,
        r.request_uuid AS request_id,
        r.status AS request_status,
        r.created_at AS request_since
    FROM asset a
    LEFT JOIN materialization s ON s.id = a.last_success_id
    LEFT JOIN materialization t ON t.id = a.last_attempt_id
    LEFT JOIN (
        SELECT d.asset_key AS asset_key, MIN(d.dep_key) AS source_key
        FROM asset_dep d
        JOIN asset x ON x.key = d.dep_key
        WHERE x.observable AND x.active
        GROUP BY d.asset_key
    ) src ON src.asset_key = a.key
    LEFT JOIN asset sa ON sa.key = src.source_key
    LEFT JOIN source_observation o ON o.id = sa.latest_observation_id
    LEFT JOIN observe_error oe ON oe.source_key = src.source_key
    LEFT JOIN (
        SELECT asset_key, MAX(id) AS id
        FROM ooi_request
        WHERE status IN ('pending', 'ready')
        GROUP BY asset_key
    ) ro ON ro.asset_key = a.key
    LEFT JOIN ooi_request r ON r.id = ro.id
    WHERE a.active AND NOT a.observable
) b
"""


def upgrade() -> None:
    op.add_column("asset", sa.Column("freshness_warn_seconds", sa.Float(), nullable=True))
    op.add_column("asset", sa.Column("freshness_fail_seconds", sa.Float(), nullable=True))
    # The default policy until the next sync records each asset's own.
    op.execute(
        sa.text(
            "UPDATE asset SET freshness_warn_seconds = :warn, freshness_fail_seconds = :fail"
        ).bindparams(warn=DEFAULT_WARN_SECONDS, fail=DEFAULT_FAIL_SECONDS)
    )
    op.execute(stream_status_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS stream_status")
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.drop_column("freshness_fail_seconds")
        batch_op.drop_column("freshness_warn_seconds")
