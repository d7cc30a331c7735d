"""Which half of the twin serves a request: the SigV4 signing service and region, and GreengrassV2's paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

# Authorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/greengrass/aws4_request, ...
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class SigningScope:
    region: str
    service: str


def signing_scope(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> SigningScope | None:
    """The credential scope a request was signed for: the Authorization header, or a presigned URL's
    X-Amz-Credential. None for an unsigned request."""
    found = _SCOPE.search(headers.get("authorization", ""))
    if found is not None:
        return SigningScope(found.group(1), found.group(2))
    for credential in query.get("X-Amz-Credential", []):
        matched = _QUERY_SCOPE.match(unquote(credential))
        if matched is not None:
            return SigningScope(matched.group(1), matched.group(2))
    return None


def is_greengrass_v2(raw_path: str) -> bool:
    """GreengrassV2 and v1 share the signing name and host (`greengrass`); v2 lives under /greengrass/v2/,
    plus /tags/{arn} for v2 ARNs (`...:components:...`, `...:deployments:...`, `...:coreDevices:...`;
    v1 ARNs have a `/greengrass/...` resource part), plus the account-level service role and connectivity
    info paths that the v2 model also defines (served by the v2 layer: v1 is not part of the twin)."""
    if raw_path.startswith("/greengrass/v2/") or raw_path == "/greengrass/servicerole":
        return True
    if raw_path.startswith("/greengrass/things/") and raw_path.endswith("/connectivityInfo"):
        return True
    if raw_path.startswith("/tags/"):
        return ":/greengrass/" not in unquote(raw_path[len("/tags/") :])
    return False
