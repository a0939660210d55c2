"""soc: security operations monitoring for public-service systems."""
