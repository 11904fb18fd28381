"""Errors the CLI shows as one line (exit code 2) instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for: bad value, unknown name, missing file."""


class DataError(UserError):
    """Data on disk that cannot be read: corrupt, truncated or missing records."""


class PluginError(UserError):
    """A plugin that cannot be resolved: unknown name, name clash, failed load."""
