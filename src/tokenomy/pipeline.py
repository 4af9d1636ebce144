"""tokenomy.pipeline (see ARCHITECTURE.md)."""
