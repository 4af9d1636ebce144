"""tokenomy.client (see ARCHITECTURE.md)."""
