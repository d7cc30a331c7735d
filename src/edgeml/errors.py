"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""


class EdgemlError(Exception):
    """Base for every error that names what was wrong with the user's input or environment."""
