"""Complaint life cycle: states, roles and actions (the pure state machine)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_COMPLAINANT = "waiting_for_complainant"
    RESOLVED = "resolved"
    REPLIED = "replied"
    REVISIT = "revisit"
    CLOSED = "closed"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"
    ARCHIVED = "archived"


class Role(StrEnum):
    COMPLAINANT = "complainant"
    INTAKE_CLERK = "intake_clerk"
    HANDLER = "handler"
    DEPARTMENT_HEAD = "department_head"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"  # the scheduler and other automatic actors
