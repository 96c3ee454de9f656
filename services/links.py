"""What counts as a link. Two questions with different answers, so two names:

- `is_web_link`: an http(s) link — the only kind a provider or this app's fetcher can use.
- `looks_like_link`: the user typed some scheme ("ftp://", "file://", "https://"), so it is
  a link (perhaps one that will be refused with its own sentence), not a local path.

Pure string work: imported by services and components alike, and by code paths that must
not load httpx.
"""

from __future__ import annotations

import re

# Read without urlsplit, which raises on a malformed host ("http://[::1/a.mp4"): such a link
# is still a link, and fetching it gives it its own sentence.
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")

# A web address typed without its scheme ("example.com/clip.mp4"): not a file here, so the
# sentence says to add https:// instead of "no such file".
_WEB_ADDRESS = re.compile(r"\s*(?:www\.|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d+)?/)")


def is_web_link(value: str) -> bool:
    """An http:// or https:// link (any case): something that can be fetched."""
    return value.lower().startswith(("http://", "https://"))


def looks_like_link(value: str) -> bool:
    """Some scheme followed by "://": a link of any kind, so never looked up as a file."""
    match = _SCHEME.match(value)
    # One letter is a Windows drive ("C:\\clip.mp4"), not a scheme.
    return match is not None and len(match.group(1)) > 1 and "://" in value


def looks_like_web_address(value: str) -> bool:
    """A web address without its scheme ("example.com/clip.mp4", "www.example.com")."""
    return not looks_like_link(value) and _WEB_ADDRESS.match(value) is not None
