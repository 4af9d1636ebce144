"""tokenomy.analysis."""
