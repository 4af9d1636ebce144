"""tokenomy.gateway."""
