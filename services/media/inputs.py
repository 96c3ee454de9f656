"""`reenact check PATH_OR_URL...`: each input fetched if it is a link, then checked."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, computed_field

from services.config import Settings
from services.errors import InputError
from services.links import looks_like_link, looks_like_web_address
from services.media.checks import Check, CheckReport, Source, check_file
from services.media.sniff import IMAGE_EXTS, VIDEO_EXTS
from services.models import MediaRole, ProviderCapabilities


class InputReport(BaseModel):
    input: str  # as the user gave it
    role: MediaRole | None  # inferred from what the file is (None: could not tell)
    source: Source = "path"
    path: str | None = None  # where the checked file is (the stored copy for a URL)
    report: CheckReport

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> bool:
        return self.report.failed


def _url_path(url: str) -> Path:
    """The path part of a link, for its extension; empty when the link does not parse (its
    own sentence already says so — this must not fail the whole check a second time)."""
    try:
        return Path(urlsplit(url).path)
    except ValueError:
        return Path()


def _role_guess(path: Path) -> MediaRole | None:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return MediaRole.DRIVING_VIDEO
    if ext in IMAGE_EXTS:
        return MediaRole.CHARACTER_IMAGE
    return None


def capabilities_for(
    provider_ids: list[str] | None, settings: Settings
) -> list[ProviderCapabilities]:
    """Capabilities of the named providers. An unknown id raises ConfigError (usage error)."""
    from services.providers.registry import get_provider  # providers load lazily

    caps = []
    for pid in provider_ids or []:
        provider = get_provider(pid, settings)
        try:
            caps.append(provider.capabilities())
        finally:
            provider.close()
    return caps


def check_inputs(
    items: list[str], provider_ids: list[str] | None, settings: Settings
) -> list[InputReport]:
    """One report per input, in order. Bad files and refused links become a report with a
    failing check and its sentence; only an unknown provider id raises (ConfigError)."""
    caps = capabilities_for(provider_ids, settings)
    return [_check_one(item, caps, settings) for item in items]


def _check_one(item: str, caps: list[ProviderCapabilities], settings: Settings) -> InputReport:
    source: Source
    if looks_like_link(item):
        source = "url"
        from services.fetch import ingest_url  # httpx only when a link is given

        try:
            path = ingest_url(item, settings)
        except InputError as err:
            fail = Check(id="fetch", status="fail", sentence=str(err))
            role = _role_guess(_url_path(item))
            return InputReport(
                input=item,
                role=role,
                source=source,
                report=CheckReport(role=role, checks=[fail]),
            )
    else:
        source = "path"
        path = Path(item).expanduser()
        if looks_like_web_address(item) and not path.exists():
            from services.netguard import scheme_sentence

            fail = Check(id="fetch", status="fail", sentence=scheme_sentence(item.strip(), ""))
            role = _role_guess(_url_path(item))
            return InputReport(
                input=item, role=role, source="url", report=CheckReport(role=role, checks=[fail])
            )
    # A fetched link is stored under its content hash: sentences use the link's file name.
    shown = _url_path(item).name if source == "url" else None
    report = check_file(path, None, caps, source=source, name=shown or None)
    role = report.role or _role_guess(path)
    return InputReport(input=item, role=role, source=source, path=str(path), report=report)
