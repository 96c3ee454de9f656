"""'Test connection' for Settings: the cheapest authenticated question a provider answers.

A provider may offer its own `test_connection() -> str`; otherwise the app asks for the
status of a task id that cannot exist. That read costs nothing: a "not found" answer proves
the address is right and the key was accepted, a 401/403 proves the key is wrong.
"""

from __future__ import annotations

from pydantic import BaseModel

from services.errors import ErrorKind, ProviderError, ReenactError
from services.studio import Studio

PROBE_TASK_ID = "00000000-0000-4000-8000-000000000000"


class ConnectionResult(BaseModel):
    ok: bool
    sentence: str


def test_connection(studio: Studio, provider_id: str) -> ConnectionResult:
    provider = studio.provider(provider_id)
    av = provider.availability()
    if not av.available:
        return ConnectionResult(ok=False, sentence=av.reason or f"{provider.name} is not set up.")
    own = getattr(provider, "test_connection", None)
    try:
        if callable(own):
            return ConnectionResult(ok=True, sentence=str(own()))
        if provider_id == "local":
            return ConnectionResult(
                ok=True,
                sentence="The local engine runs on this computer; nothing to connect to. "
                "Checked that it is available.",
            )
        provider.poll(PROBE_TASK_ID)
    except ProviderError as err:
        if err.kind in (ErrorKind.NOT_FOUND, ErrorKind.INVALID_INPUT):
            return ConnectionResult(
                ok=True,
                sentence=f"Connected: {provider.name} answered an authenticated status request "
                "(for a made-up task id) and accepted the key.",
            )
        return ConnectionResult(ok=False, sentence=str(err))
    except ReenactError as err:
        return ConnectionResult(ok=False, sentence=str(err))
    return ConnectionResult(
        ok=True,
        sentence=f"Connected: {provider.name} answered an authenticated status request.",
    )
