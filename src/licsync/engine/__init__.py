"""The licensing engine: pure functions from a tenant, rules and policy to a plan.

No I/O, no logging, no Graph: it imports only the model and the standard library.
"""

from licsync.engine.compute import compute_plan
from licsync.engine.inputs import PlanRules, Policy, Rule, UsageLocationMode

__all__ = ["PlanRules", "Policy", "Rule", "UsageLocationMode", "compute_plan"]
