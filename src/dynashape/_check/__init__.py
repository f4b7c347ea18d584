"""The dynamism doctor: find (and where safe, fix) dynamic dims that the graph pins to a number.

>>> from dynashape._check import check  # doctest: +SKIP
>>> report = check("model.onnx")  # doctest: +SKIP
>>> [f.op for f in report.findings]  # doctest: +SKIP
['Reshape']
"""

from __future__ import annotations

from .doctor import check
from .fix import fix
from .report import Finding, FixResult, Report

__all__ = ["Finding", "FixResult", "Report", "check", "fix"]
