"""Detectors: Sigma rules, correlation and the anomaly model, run on schedule."""
