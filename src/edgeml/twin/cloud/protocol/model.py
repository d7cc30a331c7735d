"""botocore's own service models, loaded at run time, and the Java-regex patterns they carry made usable."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import botocore.session
from botocore.model import ServiceModel, Shape

# Java character classes the models use; Python's `re` has no \p{...}. \p{C} ("other": control, format,
# unassigned) is approximated by the C0/C1 control characters, \p{L} by ASCII letters and U+00C0 upward.
_JAVA_CLASSES = {
    r"\p{C}": r"\x00-\x1f\x7f-\x9f",
    r"\p{Cntrl}": r"\x00-\x1f\x7f",
    r"\p{Graph}": r"\x21-\x7e",
    r"\p{Upper}": r"A-Z",
    r"\p{Digit}": r"0-9",
    r"\p{L}": r"a-zA-Z\u00c0-\uffff",
    r"\p{Z}": r"\s",
    r"\p{N}": r"0-9",
}


# Supplementary models in botocore's own format (`<service>/<api-version>/service-2.sdk-extras.json`), merged
# by botocore's loader into its model: the greengrassv2-data operations a nucleus calls (models/README.md).
TWIN_MODELS = Path(__file__).with_name("models")


def twin_botocore_session() -> botocore.session.Session:
    """A botocore session whose loader also reads TWIN_MODELS its clients and models have them."""
    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    session.set_config_variable("data_path", os.pathsep.join(filter(None, [str(TWIN_MODELS), data_path])))
    return session


@cache
def service_model(name: str, api_version: str | None = None) -> ServiceModel:
    """The model botocore itself uses for `name` (e.g. `greengrassv2`), so the twin's shapes cannot drift,
    with the operations of TWIN_MODELS merged in by botocore's loader."""
    return twin_botocore_session().get_service_model(name, api_version)


@cache
def compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's pattern as a Python regex (searched, not anchored, as Smithy defines it); None if the
    pattern uses a construct Python cannot express even after translating the Java classes."""
    translated = pattern
    for java, python in _JAVA_CLASSES.items():
        translated = translated.replace(java, python)
    try:
        return re.compile(translated)
    except re.error:
        return None


def is_error_shape(shape: Shape) -> bool:
    return bool(shape.metadata.get("exception"))


def error_status(model: ServiceModel, code: str) -> int:
    """The HTTP status the model gives error shape `code`; 400 for a code the model does not know."""
    if code in model.shape_names:
        status = model.shape_for(code).metadata.get("error", {}).get("httpStatusCode")
        if isinstance(status, int):
            return status
    return 400
