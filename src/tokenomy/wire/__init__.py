"""Anthropic wire shapes, field names verbatim; SSE parse/emit. Pure."""
