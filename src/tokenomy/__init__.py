"""tokenomy: cheap, fast Claude agent runs, measured."""

from tokenomy._version import __version__

__all__ = ["__version__"]
