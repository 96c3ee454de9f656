"""How each provider gets the creator's files (services.publish.input_route): Settings shows
the route per provider, and Create blocks Submit with the same sentence the studio would
refuse it with when a URL-only provider has no way to fetch an uploaded file."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components.format import plain
from services.config import Settings
from services.links import is_web_link
from services.models import TaskInputs
from services.providers.catalog import ProviderInfo
from services.publish import InputRoute, input_route, no_route_sentence, route_sentence

_LABELS = {
    InputRoute.PROVIDER: "the file itself",
    InputRoute.BUCKET: "presigned link from the bucket",
    InputRoute.PUBLIC_URL: "link from this app",
    InputRoute.NONE: "pasted links only",
}


def input_routes_panel(settings: Settings, infos: Sequence[ProviderInfo]) -> None:
    """One row per provider that can start tasks: the route its files take and why."""
    s3 = settings.s3
    if s3 is not None:
        where = f" at `{plain(s3.endpoint_url)}`" if s3.endpoint_url else ""
        gone = "deleted when their task ends" if s3.delete_inputs else "kept (deletion is off)"
        st.markdown(
            f"- **Bucket:** `{plain(s3.bucket)}`{where}, under `{plain(s3.prefix or '/')}`: "
            f"inputs for link-only providers ({gone}) and archived results"
        )
    else:
        st.markdown(
            "- **Bucket:** not set (`REENACT_S3_BUCKET`, with `REENACT_S3_ENDPOINT_URL` for "
            "R2 or MinIO, hands uploads to link-only providers as private links)"
        )
    rows = []
    for info in infos:
        if not info.capabilities.can_create:
            continue
        route = input_route(info.capabilities.needs_urls, settings)
        rows.append(
            {
                "Provider": info.name,
                "Gets your files as": _LABELS[route],
                "How": route_sentence(route, settings, info.name),
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")


def route_blockers(
    infos: Sequence[ProviderInfo], inputs: TaskInputs | None, settings: Settings
) -> list[str]:
    """Why Submit cannot go: a chosen URL-only provider, a local file, and no route."""
    if inputs is None or all(is_web_link(v) for _, v in inputs.items()):
        return []
    return [
        no_route_sentence(info.name)
        for info in infos
        if input_route(info.capabilities.needs_urls, settings) is InputRoute.NONE
    ]
