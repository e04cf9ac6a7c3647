"""One planned materialization: what the planner hands the runner."""

from __future__ import annotations

from dataclasses import dataclass

from data_vent.core.records import Reason
from data_vent.core.vocab import Action

NO_SUCCESS = 0
"""``PlanItem.basis`` of an asset that had never succeeded when it was planned."""


@dataclass
class PlanItem:
    key: str
    action: Action | str
    reasons: list[Reason]
    basis: int | None = None
    """The id of the asset's last success the plan was made from (``NO_SUCCESS``: none).

    A plan is a proposal: under the asset's lease the runner compares it with the last
    success *now*, and re-checks staleness if another run succeeded since. None: no check.
    """

    def describe(self) -> str:
        return "; ".join(r.describe() for r in self.reasons)
