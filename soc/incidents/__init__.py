"""Incidents: alerts grouped per locality and cause, with a lifecycle, an owner and a timeline."""
