"""Wording shown wherever MedView presents an AI result (UI, reports, CLI, model cards)."""

from __future__ import annotations

RESEARCH_USE = "Research use only, not for diagnosis."
