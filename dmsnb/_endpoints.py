"""Region -> DMS endpoint, for Huawei Cloud and T Cloud Public."""

from __future__ import annotations

from urllib.parse import urlsplit

# Huawei Cloud regions with a DMS for Kafka endpoint at dms.{region}.myhuaweicloud.com
HUAWEI_CLOUD_REGIONS: tuple[str, ...] = (
    "af-north-1",
    "af-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "cn-east-2",
    "cn-east-3",
    "cn-east-4",
    "cn-east-5",
    "cn-north-1",
    "cn-north-2",
    "cn-north-4",
    "cn-north-9",
    "cn-north-11",
    "cn-north-12",
    "cn-south-1",
    "cn-south-2",
    "cn-south-4",
    "cn-southwest-2",
    "cn-southwest-3",
    "eu-west-0",
    "la-north-2",
    "la-south-2",
    "me-east-1",
    "my-kualalumpur-1",
    "na-mexico-1",
    "ru-moscow-1",
    "sa-brazil-1",
    "tr-west-1",
)

# Regions whose endpoint does not follow the pattern above.
SPECIAL_ENDPOINTS: dict[str, str] = {
    "eu-west-101": "https://dms.eu-west-101.myhuaweicloud.eu",
    # T Cloud Public (formerly Open Telekom Cloud)
    "eu-de": "https://dms.eu-de.otc.t-systems.com",
    "eu-nl": "https://dms.eu-nl.otc.t-systems.com",
}

T_CLOUD_REGIONS: tuple[str, ...] = ("eu-de", "eu-nl")


def endpoint_for_region(region: str) -> str:
    """The DMS endpoint of ``region``; ``ValueError`` naming the known ones."""
    region = region.strip().lower()
    if region in SPECIAL_ENDPOINTS:
        return SPECIAL_ENDPOINTS[region]
    if region in HUAWEI_CLOUD_REGIONS:
        return f"https://dms.{region}.myhuaweicloud.com"
    known = ", ".join(sorted((*HUAWEI_CLOUD_REGIONS, *SPECIAL_ENDPOINTS)))
    raise ValueError(
        f"unknown region {region!r}; pass endpoint=... for it, or one of: {known}"
    )


def is_loopback(endpoint: str) -> bool:
    """True when ``endpoint`` points at this machine."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def normalise_endpoint(endpoint: str) -> str:
    """Check an endpoint URL and drop a trailing slash."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"endpoint {endpoint!r} is not an http(s) URL; "
            "give e.g. 'https://dms.eu-de.otc.t-systems.com' or region=..."
        )
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(
            f"endpoint {endpoint!r} must be the service root without a path; "
            "dmsnb adds the /v2/{project_id}/... paths itself"
        )
    return f"{parts.scheme}://{parts.netloc}"
