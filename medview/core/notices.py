"""Wording shown wherever MedView presents an AI result (UI, reports, CLI, model cards)."""

from __future__ import annotations

RESEARCH_USE = "Research use only, not for diagnosis."

# how a result made outside a model's domain, or outside its plausible range, is marked
OUTSIDE_DOMAIN = "outside the model's domain"
IMPLAUSIBLE = "implausible result"


def is_flagged(notes: tuple[str, ...] | list[str]) -> bool:
    """Whether any of a result's notes marks it as outside the domain or implausible."""
    return any(n.startswith((OUTSIDE_DOMAIN, IMPLAUSIBLE)) for n in notes)
