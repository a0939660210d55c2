"""Sigma detection: pipeline, compiler, correlation searches, runner (see docs/detection.md)."""
