"""The malware scanner: static analysis of a distribution's contents (never imported, built or
run), findings from data rules, a score weighted by where code runs, and a verdict.

``scan(path, disabled=..., budget=...)`` is the one entry point; see ``engine``.
"""

from .budget import Budget
from .engine import SCANNER_VERSION, Finding, ScanResult, scan, verdict_for
from .rules import RULES, RULESET_VERSION, Rule

__all__ = ["Budget", "Finding", "RULES", "RULESET_VERSION", "Rule", "SCANNER_VERSION",
           "ScanResult", "scan", "verdict_for"]
