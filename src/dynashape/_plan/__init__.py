"""Planning engines from real traffic: workloads, a measured cost model, exact DP, the plan file.

``dynashape.plan`` (:func:`.planner.plan`) writes a :class:`.record.Plan`; ``dynashape.build(...,
plan=...)`` builds it, checks that padding is safe for the model (:mod:`.padding`) and stores the
plan in the engine's manifest; the engine captures the plan's ladder at load.
"""

from __future__ import annotations

from .planner import plan
from .record import Ladder, Padding, Plan, Prediction
from .report import explain, write_report

__all__ = ["Ladder", "Padding", "Plan", "Prediction", "explain", "plan", "write_report"]
