"""Errors a user can act on. Each carries a one-line message and an exit code."""

from __future__ import annotations


class DataVentError(Exception):
    """Base: ``str(err)`` is a single line that names the thing and what to do."""

    exit_code = 1


class BadInput(DataVentError):
    """Bad config, selection, key, URL or file given by the user: exit 2."""

    exit_code = 2


class ConfigError(BadInput):
    pass


class SelectionError(BadInput):
    """A selection that does not parse or names an unknown asset."""

    def __init__(self, message: str, text: str = "", position: int | None = None):
        self.text = text
        self.position = position
        if position is not None and text:
            message = (
                f"{message} at position {position}: {text[:position]}⟨here⟩{text[position:]}"
            )
        super().__init__(message)


class GraphError(BadInput):
    """A cycle or unknown dependency in the asset definitions."""


class KeyError_(BadInput):
    """An invalid asset key."""
