"""Profile-dependent facts the rule book (models.workflow.decide) is given, pure.

Kept apart from models.actions so models.notifications can use them without importing the
action layer (which imports notifications).
"""

from __future__ import annotations

from typing import Any

from config.profiles import Profile


def severity_raisable(profile: Profile, complaint: Any) -> bool:
    """Staff may raise this case's severity: the profile allows it and a higher one exists."""
    if not profile.severity_rules.raisable or not profile.severities:
        return False
    return profile.severity_rank(complaint.severity) < len(profile.severities) - 1


def recall_decision_pending(profile: Profile, complaint: Any) -> bool:
    """The profile requires the recall decision before resolving (R26), and none is recorded."""
    return profile.resolution.requires_recall_decision and complaint.recall_decision is None
