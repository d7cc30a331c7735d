"""Failures of `edgeml build` / `edgeml publish`, each naming the file, component or call that was wrong."""

from edgeml.errors import EdgemlError


class ComponentError(EdgemlError):
    """Base of the component build/publish errors."""


class RecipeInvalid(ComponentError):
    """A recipe that cannot be read or that gdk's recipe schema rejects (path + JSON pointer)."""


class GdkConfigInvalid(ComponentError):
    """A gdk-config.json that cannot be read or that gdk 1.6.2's project schema rejects."""


class UnknownComponent(ComponentError):
    """A component named on the command line that has no gdk project under components/."""


class BuildFailed(ComponentError):
    """The build produced no artifact the recipe names, or the custom build command failed."""


class PublishFailed(ComponentError):
    """S3 upload, version lookup or CreateComponentVersion failed."""
