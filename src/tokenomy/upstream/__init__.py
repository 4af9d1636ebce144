"""tokenomy.upstream."""
