"""The Typer application (`ecgarena.cli.app`) and its console-script entry point."""

from .app import app, main

__all__ = ["app", "main"]
