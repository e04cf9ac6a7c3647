"""One planned materialization: what the planner hands the runner."""

from __future__ import annotations

from dataclasses import dataclass

from data_vent.core.records import Reason
from data_vent.core.vocab import Action


@dataclass
class PlanItem:
    key: str
    action: Action | str
    reasons: list[Reason]

    def describe(self) -> str:
        return "; ".join(r.describe() for r in self.reasons)
