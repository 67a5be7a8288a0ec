"""The package version, kept in one place for the entry points, User-Agent and scope."""

__version__ = "0.1.0"
