"""The API face of the detection rules; the rules themselves live in ``detectors.sigma``."""
