"""tokenomy.core."""
