"""One submission, one charge: a create is repeated only when it provably never reached the
provider or the provider refused it before accepting; otherwise its outcome is `unknown`."""

from __future__ import annotations

import pytest

from services.errors import ErrorKind, ProviderError, TransportError
from tests.providers.conftest import MakeHarness, build_provider

CREATORS = ["cometapi", "liangxin", "runway"]
FIELD = {"cometapi": "image", "liangxin": "input.reference.uri", "runway": "reference.uri"}


@pytest.mark.parametrize("pid", CREATORS)
def test_connection_refused_is_retried_then_unavailable_not_sent(
    harness: MakeHarness, pid: str, closed_port: int
) -> None:
    h = harness(pid)
    request = h.request()
    env = {**h.emu.env(), f"REENACT_{pid.upper()}_BASE_URL": f"http://127.0.0.1:{closed_port}"}
    provider = build_provider(pid, h.tmp, env, h.sleeps)
    with pytest.raises(TransportError) as info:
        provider.create(request)
    provider.close()
    assert info.value.sent is False
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert "Could not reach" in str(info.value)
    assert len(h.sleeps) == 2  # safe to repeat: it never left this machine


@pytest.mark.parametrize("pid", CREATORS)
def test_read_timeout_after_send_is_unknown_and_never_resent(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid, http={"read_timeout": 0.3})
    h.emu.fault("slow", route="create", delay=1.0)
    with pytest.raises(TransportError) as info:
        h.provider.create(h.request())
    assert info.value.sent is True
    assert h.emu.create_count == 1  # the provider did accept it: exactly one create
    assert h.emu.route_counts["create"] == 1
    assert h.sleeps == []
    assert h.emu.key not in str(info.value)


@pytest.mark.parametrize("pid", CREATORS)
def test_connection_dropped_after_send_is_unknown_and_never_resent(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    h.emu.fault("drop", route="create")
    with pytest.raises(TransportError) as info:
        h.provider.create(h.request())
    assert info.value.sent is True
    assert h.emu.create_count == 1
    assert h.emu.route_counts["create"] == 1


@pytest.mark.parametrize("pid", CREATORS)
def test_rate_limited_create_was_refused_so_it_is_retried_after_retry_after(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    h.emu.fault("rate_limit", route="create", retry_after="2")
    task_id = h.provider.create(h.request())
    assert task_id in h.emu.tasks
    assert h.sleeps == [2.0]
    assert h.emu.create_count == 1 and h.emu.route_counts["create"] == 2


@pytest.mark.parametrize("pid", CREATORS)
def test_503_on_create_was_refused_so_it_is_retried(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    h.emu.fault("status", route="create", status=503)
    h.provider.create(h.request())
    assert h.emu.create_count == 1 and h.emu.route_counts["create"] == 2
    assert len(h.sleeps) == 1


@pytest.mark.parametrize("pid", CREATORS)
@pytest.mark.parametrize("status", [500, 502])
def test_other_server_errors_on_create_are_not_retried(
    harness: MakeHarness, pid: str, status: int
) -> None:
    h = harness(pid)
    h.emu.fault("status", route="create", status=status)
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert not isinstance(info.value, TransportError)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert h.emu.route_counts["create"] == 1
    assert h.sleeps == []


@pytest.mark.parametrize("pid", CREATORS)
@pytest.mark.parametrize("status", [504, 524])
def test_a_gateway_timeout_on_create_is_an_unknown_outcome(
    harness: MakeHarness, pid: str, status: int
) -> None:
    h = harness(pid, errors_in_200=False)
    h.emu.fault("status", route="create", status=status)
    with pytest.raises(TransportError) as info:
        h.provider.create(h.request())
    assert info.value.sent is True
    assert h.emu.route_counts["create"] == 1


@pytest.mark.parametrize("pid", CREATORS)
@pytest.mark.parametrize("kind", ["html", "garbage"])
def test_ok_with_an_unreadable_body_to_create_is_an_unknown_outcome(
    harness: MakeHarness, pid: str, kind: str
) -> None:
    # HTTP 200 says the provider may have accepted it: never a plain failure that invites a
    # second (paid) submit, and never retried.
    h = harness(pid)
    h.emu.fault(kind, route="create")
    with pytest.raises(TransportError) as info:
        h.provider.create(h.request())
    assert info.value.sent is True
    assert "instead of data" in str(info.value)
    assert h.emu.route_counts["create"] == 1


@pytest.mark.parametrize("pid", CREATORS)
def test_html_error_page_to_create_is_unexpected_and_not_retried(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    h.emu.fault("html", route="create", status=404)
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert not isinstance(info.value, TransportError)
    assert info.value.kind in (ErrorKind.UNEXPECTED, ErrorKind.NOT_FOUND)
    assert h.emu.route_counts["create"] == 1


@pytest.mark.parametrize("pid", CREATORS)
def test_out_of_credits(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    h.emu.fault("credits", route="create")
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert info.value.kind is ErrorKind.INSUFFICIENT_CREDITS
    assert "credits" in str(info.value)
    assert h.sleeps == [] and h.emu.create_count == 0


@pytest.mark.parametrize("pid", CREATORS)
def test_invalid_input_names_the_field(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    field = FIELD[pid]
    h.emu.fault("invalid", route="create", field=field, message=f"{field} is not reachable")
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert info.value.field == field
    assert field in str(info.value)
    assert "is not reachable" in str(info.value)  # the provider's own words
    assert h.sleeps == []
