"""Alerts: findings of the detectors, one document per (detector, rule, window, group)."""
