"""Collectors: sources, parsers, normalisation and shipping of public-service logs."""
