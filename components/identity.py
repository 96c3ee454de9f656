"""Who is using the page: the signed-in user (Streamlit's `st.login`, OpenID Connect,
configured by the operator in `.streamlit/secrets.toml` `[auth]`), or — without sign-in —
the single local operator. Pages ask `viewer()` whose work to list and act on."""

from __future__ import annotations

import streamlit as st
from pydantic import BaseModel

from services.auth import admin_emails, owner_of
from services.models import LOCAL_OWNER


class Viewer(BaseModel):
    owner: str  # what new tasks and runs belong to
    admin: bool = False
    email: str | None = None  # shown on Settings when signed in

    @property
    def sees(self) -> str | None:
        """The owner filter for listings: None = everyone's (admins, no sign-in)."""
        return None if self.admin else self.owner

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.owner


def sign_in_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all, or an unreadable one: no sign-in
        return False


def signed_in() -> bool:
    return not sign_in_configured() or bool(st.user.is_logged_in)


def viewer() -> Viewer:
    if not sign_in_configured():
        return Viewer(owner=LOCAL_OWNER, admin=True)
    owner = owner_of(st.user.to_dict()) if st.user.is_logged_in else None
    if owner is None:
        # ui.py lets no page run before sign-in; this is the last line of defence.
        st.stop()
    assert owner is not None
    return Viewer(owner=owner, admin=owner in admin_emails(), email=owner)


def sign_in_page() -> None:
    st.title("Reenact Studio")
    st.markdown(
        "Move a performance from a driving video onto a character, and compare providers "
        "side by side. **Sign in** to see your work: each person sees only their own tasks, "
        "results and comparisons."
    )
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login)


def account_panel() -> None:
    """On Settings: who is signed in, and the way out."""
    if not sign_in_configured():
        st.caption(
            "Sign-in is off: this app is single-user and listens on this computer only "
            "(see “Deploying it for others” in the README)."
        )
        return
    me = viewer()
    role = " · admin: sees everyone's work" if me.admin else ""
    st.text(f"Signed in as {me.email}{role}")
    st.button("Sign out", icon=":material/logout:", on_click=st.logout)
