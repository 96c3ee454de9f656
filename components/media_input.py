"""One input (driving video, character image, character video): upload or link, then the
check panel — the preview (a video plays in the page, streamed from disk; an image shows its
face box), each check's badge and sentence, and a button per available fix. A fix replaces
the input in one click and shows before/after.

What the session keeps is small: the stored file's path and a few words. Uploads are copied
to the data dir in chunks and the widget is then reset so Streamlit releases the bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import streamlit as st
from PIL import Image
from pydantic import BaseModel

from components.common import (
    app_base_url,
    get_studio,
    human_mb,
    log,
    sentences,
    upload_limit_mb,
)
from components.format import duration, plain, size
from components.identity import viewer
from components.providers import capabilities, provider_name
from components.uploads import (
    display_name,
    named_link,
    release_memory,
    save_stream,
)
from services.errors import InputError, ReenactError
from services.media.fix_ids import FixId
from services.media.sniff import PROVIDER_IMAGE_FORMATS, VIDEO_EXTS
from services.models import MediaRole
from services.upload_policy import check_quota, discard, remember

if TYPE_CHECKING:
    from services.media import Check, CheckReport
    from services.media.checks import Source

_FIX_ICONS: dict[FixId, str] = {
    FixId.CROP_16_9: ":material/crop_16_9:",
    FixId.PAD_16_9: ":material/fit_screen:",
    FixId.TRIM_30S: ":material/content_cut:",
    FixId.TRANSCODE_H264: ":material/movie:",
}
# The uploader lists every video container the checks open (a fix converts what providers
# refuse), but only the image formats providers take: images have no conversion fix.
_VIDEO_HELP = ", ".join(ext.lstrip(".").upper() for ext in VIDEO_EXTS)
_IMAGE_HELP = ", ".join(fmt.upper() for fmt in PROVIDER_IMAGE_FORMATS)
# Portrait players (and thumbnails) stay this narrow, so the checks beside them stay in view.
_PORTRAIT_WIDTH = 200
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_BADGE = {
    "ok": ":green-badge[:material/check: OK]",
    "warn": ":orange-badge[:material/warning: Check]",
    "fail": ":red-badge[:material/close: Blocks]",
}


class MediaChoice(BaseModel):
    """The current file for one input."""

    path: str  # a file in the data dir (the one checked and, unless `url` is used, sent)
    name: str  # what the creator called it
    url: str | None = None  # the link it came from; sent as-is while no fix is applied
    before: str | None = None  # the file before the last fix (for before/after and undo)
    fix: FixId | None = None  # the fix that produced `path`

    @property
    def value(self) -> str:
        """What a task is made from: the original link (providers fetch it themselves) or
        the stored file."""
        return self.url if self.url and not self.fix else self.path

    @property
    def source(self) -> Source:
        return "url" if self.url and not self.fix else "upload"


class InputResult(BaseModel):
    choice: MediaChoice | None = None
    blocked: bool = False  # a check failed or the file cannot be read


def _state_key(role: MediaRole) -> str:
    return f"input_{role.value}"


def current(role: MediaRole) -> MediaChoice | None:
    raw = st.session_state.get(_state_key(role))
    return MediaChoice.model_validate(raw) if raw else None


def _set(role: MediaRole, choice: MediaChoice | None) -> None:
    st.session_state[_state_key(role)] = choice.model_dump() if choice else None
    if choice is not None:
        st.session_state.pop(_gone_key(role), None)


def _gone_key(role: MediaRole) -> str:
    return f"_gone_{role.value}"


def restore(role: MediaRole, choice: MediaChoice | None, gone: str | None = None) -> None:
    """Put a remembered input back (a draft read at the start of a session); `gone` is the
    sentence shown in its place when the remembered file no longer exists."""
    _set(role, choice)
    if choice is None and gone:
        st.session_state[_gone_key(role)] = gone
    if choice is not None:
        # Still in use, so kept longer; and counted as this creator's, which the preview
        # route asks (a fix result from before fixes were counted was nobody's).
        studio, owner = get_studio(), viewer().owner
        for path in filter(None, (choice.path, choice.before)):
            remember(studio.store, owner, Path(path))


def media_input(
    role: MediaRole,
    *,
    title: str,
    hint: str,
    provider_ids: Sequence[str],
    optional: bool = False,
) -> InputResult:
    with st.container(border=True, key=f"media_{role.value}"):
        head, extra = st.columns([3, 1], vertical_alignment="center")
        head.markdown(f"**{title}**" + (" :gray[(optional)]" if optional else ""))
        choice = current(role)
        if choice is None:
            st.caption(hint)
            if gone := st.session_state.get(_gone_key(role)):
                st.caption(f":material/history: {gone}")
            _picker(role)
            return InputResult()
        if extra.button(
            "Replace", key=f"replace_{role.value}", icon=":material/swap_horiz:", type="tertiary"
        ):
            _set(role, None)
            st.rerun()
        return InputResult(choice=choice, blocked=_panel(role, choice, provider_ids))


# ---------------------------------------------------------------------------- choosing a file


def _picker(role: MediaRole) -> None:
    video = role is not MediaRole.CHARACTER_IMAGE
    tab_upload, tab_link = st.tabs(["Upload", "Paste a link"])
    with tab_upload:
        gen = st.session_state.setdefault(f"_upgen_{role.value}", 0)
        # Any file is taken: a wrong one gets a sentence saying where it goes (below), which
        # Streamlit's own type filter cannot say (only a red chip, its text on hover).
        uploaded = st.file_uploader(
            "Video file" if video else "Image file",
            key=f"upload_{role.value}_{gen}",
            help=f"{_VIDEO_HELP if video else _IMAGE_HELP}; "
            f"up to {human_mb(upload_limit_mb())} per file.",
            label_visibility="collapsed",
        )
        refused = st.session_state.pop(f"_refused_{role.value}", None)
        if refused:
            st.error(plain(refused), icon=":material/error:")
        if uploaded is not None:
            # A new widget key lets Streamlit drop the in-memory copy of the upload, whether
            # it is kept or refused; a refused one is said above a fresh uploader.
            st.session_state[f"_upgen_{role.value}"] = gen + 1
            with st.spinner("Saving the file…"), sentences("saving the upload"):
                try:
                    studio, owner = get_studio(), viewer().owner
                    check_quota(studio.store, studio.settings, owner, uploaded.size)
                    shown = display_name(uploaded.name)
                    stored = save_stream(uploaded, uploaded.name, studio.settings.uploads_dir)
                    release_memory(uploaded)
                    del uploaded
                    _keep_if_readable(role, stored, shown, owner)
                except ReenactError as err:
                    st.session_state[f"_refused_{role.value}"] = str(err)
                st.rerun()
    with tab_link:
        with st.form(f"link_form_{role.value}", border=False):
            url = st.text_input(
                "Link",
                placeholder="https://…/performance.mp4" if video else "https://…/face.png",
                label_visibility="collapsed",
            )
            fetch = st.form_submit_button("Fetch", icon=":material/download:")
        if fetch:
            _fetch(role, url or "")


def _fetch(role: MediaRole, url: str) -> None:
    from services.fetch import ingest_url

    url = url.strip()
    if not url:
        st.warning("Paste a link to a video or image file first.")
        return
    with st.spinner("Fetching the file…"), sentences("fetching the link"):
        settings = get_studio().settings
        fetched = ingest_url(url, settings)
        name = url.rsplit("/", 1)[-1].split("?", 1)[0] or fetched.name
        if not Path(name).suffix:
            name += fetched.suffix
        stored = named_link(fetched, name, settings.uploads_dir)
        owner = viewer().owner
        check_quota(get_studio().store, settings, owner, stored.stat().st_size)
        _keep_if_readable(role, stored, display_name(name), owner, url=url)
        st.rerun()


_WRONG_KIND = {
    "image": "This is an image ({name}) — drop it on Character image.",
    "video": "This is a video ({name}) — drop it on Driving video.",
}


def _keep_if_readable(
    role: MediaRole, stored: Path, name: str, owner: str, *, url: str | None = None
) -> None:
    """Count the file against its owner and make it the input — or, if it cannot be read
    at all (not a video or image, damaged), delete it at once and say why."""
    from services.media import probe

    studio = get_studio()
    try:
        kind = probe(stored).kind
        wanted = "image" if role is MediaRole.CHARACTER_IMAGE else "video"
        if kind != wanted:
            raise InputError(_WRONG_KIND[kind].format(name=name))
    except InputError:
        # The same bytes may already be another input of this form (one folder per content).
        if not any(
            (c := current(other)) is not None and Path(c.path).parent == stored.parent
            for other in MediaRole
            if other is not role
        ):
            discard(studio.store, studio.settings, stored)
        raise
    remember(studio.store, owner, stored)
    _set(role, MediaChoice(path=str(stored), name=name, url=url))


# ----------------------------------------------------------------------------- the check panel


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


@st.cache_data(show_spinner=False, max_entries=64)
def _report(
    path: str, mtime_ns: int, role: str, provider_ids: tuple[str, ...], source: Source, name: str
) -> CheckReport:
    from services.media import run_checks

    caps = [c for c in (capabilities(p) for p in provider_ids) if c is not None]
    # Named as the panel names it, so the file line and the sentences agree.
    return run_checks(Path(path), MediaRole(role), caps, source=source, name=name)


@st.cache_data(show_spinner=False, max_entries=64)
def _thumb(path: str, mtime_ns: int) -> Image.Image | None:
    try:
        from services.media import thumbnail

        return thumbnail(Path(path), faces=True, max_side=480)
    except InputError as err:  # expected: the checks below say the same in a sentence
        log.info("No thumbnail for %s: %s", Path(path).name, err)
        return None
    except Exception:
        # No picture is better than no page: the checks below still say what is wrong.
        log.warning("No thumbnail for %s", path, exc_info=True)
        return None


def _panel(role: MediaRole, choice: MediaChoice, provider_ids: Sequence[str]) -> bool:
    """Render the preview, facts and checks; return True when the input blocks submission."""
    if not Path(choice.path).is_file():
        st.error(
            "This file is no longer in the data folder. Replace it with a new upload or link.",
            icon=":material/error:",
        )
        return True
    with st.spinner("Checking…"):
        report = _report(
            choice.path,
            _mtime(choice.path),
            role.value,
            tuple(provider_ids),
            choice.source,
            choice.name,
        )

    picture, words = st.columns([2, 3], gap="medium")
    with picture:
        if choice.before and choice.fix:
            was, now = st.columns(2, gap="small")
            with was:
                _preview(choice.before, "Before")
            with now:
                _preview(choice.path, f"After · {choice.fix.label}")
            if st.button(
                "Undo fix", key=f"undo_{role.value}", icon=":material/undo:", type="tertiary"
            ):
                _set(role, MediaChoice(path=choice.before, name=choice.name, url=choice.url))
                st.rerun()
        else:
            _preview(choice.path)
    with words:
        st.caption(_facts_line(choice, report))
        _checks(role, choice, report)
    return bool(report.failed)


def _preview(path: str, caption: str | None = None) -> None:
    """A video browsers play is a player, streamed from disk by the /uploads route (the
    session holds its address, never its bytes); anything else — an image, a video only a
    conversion makes playable — is its thumbnail with the face box."""
    mtime = _mtime(path)
    shape = _playable(path, mtime)
    url = _upload_url(path) if shape is not None else None
    if shape is not None and url is not None:
        width, height = shape
        st.video(url, width=_PORTRAIT_WIDTH if height > width else "stretch")
    else:
        with st.spinner("Checking…"):
            thumb = _thumb(path, mtime)
        if thumb is None:
            return
        st.image(thumb, width=_fit(thumb))
    if caption:
        st.caption(caption)


@st.cache_data(show_spinner=False, max_entries=64)
def _playable(path: str, mtime_ns: int) -> tuple[int, int] | None:
    """(width, height) of a video every browser plays as it is; None otherwise."""
    from services.media import probe
    from services.media.checks import browser_ready

    try:
        info = probe(Path(path))
    except InputError:  # the checks say why in a sentence
        return None
    except Exception:
        # A file that trips the prober gets its thumbnail (or none), never a broken page.
        log.warning("No preview for %s", path, exc_info=True)
        return None
    return (info.width, info.height) if browser_ready(info) else None


def _upload_url(path: str) -> str | None:
    """The viewer's address of a stored input (uploads/<digest>/<name>): server/routes.py
    stream_upload answers it to its owner only. None for a file stored anywhere else."""
    stored = Path(path)
    uploads = get_studio().settings.uploads_dir
    if stored.parent.parent != uploads or not _DIGEST.match(stored.parent.name):
        return None
    return f"{app_base_url()}/uploads/{stored.parent.name}/{quote(stored.name)}"


def _fit(image: Image.Image) -> int | Literal["stretch"]:
    """Landscape fills the column; portrait stays small so the checks stay in view."""
    return _PORTRAIT_WIDTH if image.height > image.width else "stretch"


def _facts_line(choice: MediaChoice, report: CheckReport) -> str:
    info = report.info
    parts = [plain(choice.name)]
    if info is not None:
        parts.append(f"{info.width}×{info.height}")
        if info.kind == "video":
            if info.duration_s:
                parts.append(duration(info.duration_s))
            if info.fps:
                parts.append(f"{info.fps:.0f} fps")
        parts.append(plain(info.codec.upper()))
        parts.append(size(info.size_bytes))
    if choice.url and not choice.fix:
        parts.append("from a link")
    return " · ".join(parts)


def _checks(role: MediaRole, choice: MediaChoice, report: CheckReport) -> None:
    checks = report.checks
    problems = [c for c in checks if c.status != "ok"]
    passed = [c for c in checks if c.status == "ok"]
    for c in sorted(problems, key=lambda c: c.status != "fail"):
        with st.container(key=f"check_{role.value}_{c.id}_{c.provider or 'all'}"):
            st.markdown(f"{_BADGE[c.status]} {plain(c.sentence)}")
            fixes = c.fixes or ([c.fix] if c.fix else [])
            if fixes:
                row = st.container(horizontal=True, gap="small")
                for fix in fixes:
                    # "Crop to 16:9 → 360×202": the button says what the fix will produce.
                    label = c.fix_labels.get(fix, fix.label)
                    icon = _FIX_ICONS[fix]
                    if row.button(label, key=f"fix_{role.value}_{c.id}_{fix}", icon=icon):
                        _apply(role, choice, fix)
    if passed:
        # The file's own checks are counted; the chosen providers' limits are said per
        # provider, so ticking a provider never changes "N checks passed".
        own = [c for c in passed if not c.provider]
        limits: dict[str, list[Check]] = {}
        for c in checks:
            if c.provider:
                limits.setdefault(c.provider, []).append(c)
        title = f"{len(own)} file checks passed" if own else "Provider limits"
        if limits:
            title += " · " + ", ".join(
                f"{provider_name(p)}: {sum(c.status == 'ok' for c in cs)} of {len(cs)} limits met"
                for p, cs in limits.items()
            )
        with st.expander(title, icon=":material/task_alt:"):
            for c in passed:
                st.markdown(f"{_BADGE['ok']} {plain(c.sentence)}")


def _apply(role: MediaRole, choice: MediaChoice, fix: FixId) -> None:
    from services.media import apply_fix

    with st.spinner(f"{fix.label}…"), sentences("fixing the file"):
        studio = get_studio()
        uploads = studio.settings.uploads_dir
        out_dir = uploads / "fixed"
        out_dir.mkdir(parents=True, exist_ok=True)
        made = apply_fix(Path(choice.path), fix, out_dir)
        fixed = named_link(made, fix.name_for(choice.name, made.suffix), uploads)
        # The creator's own, like an upload: the preview route plays it to them (and to
        # nobody else), and it counts against their space.
        remember(studio.store, viewer().owner, fixed)
        _set(
            role,
            MediaChoice(
                path=str(fixed),
                name=choice.name,
                url=choice.url,
                before=choice.before or choice.path,
                fix=fix,
            ),
        )
        st.rerun()
