"""tokenomy.batch."""
