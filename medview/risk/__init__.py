"""Tabular risk models: a JSON manifest and JSON coefficients (no code runs on load), a feature
schema with units and plausible ranges, calibrated predictions with a bootstrap interval and
exact per-feature contributions. numpy + stdlib only: no Qt, no torch, no scikit-learn."""
