"""API keys are header values: trimmed when loaded, refused (naming the variable, never
showing the key) when they could not be sent as one header line — and the libcurl poll path
refuses to put a line break into any header, whatever handed it one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from services.config import load_settings
from services.curl_transport import CurlPollTransport
from services.errors import ConfigError
from services.http import HttpClient, HttpOptions
from services.providers.registry import get_provider
from tests.cli.support import run
from tests.emulators import CometApiEmulator
from tests.security.rawserver import RawServer
from tests.security.recording import RecordingRunway

INJECTED = "X-Injected"


@pytest.fixture
def runway() -> Iterator[RecordingRunway]:
    with RecordingRunway() as emu:
        yield emu  # type: ignore[misc]


def test_a_key_pasted_with_a_trailing_newline_is_trimmed_and_works(
    env: dict[str, str], runway: RecordingRunway, video: str, image: str
) -> None:
    env.update(runway.env())
    env["REENACT_RUNWAY_API_KEY"] = f"  {runway.key}\n"
    r = run(["submit", "--provider", "runway", "--video", video, "--image", image, "--json"], env)
    assert r.code == 0, r.output
    assert r.json()["status"] != "unknown"
    assert runway.create_count == 1
    assert [q.bearer for q in runway.seen if q.method == "POST"] == [runway.key]


def test_a_key_with_a_line_break_inside_is_a_configuration_error_naming_the_variable(
    env: dict[str, str], runway: RecordingRunway, video: str, image: str
) -> None:
    secret = f"{runway.key}\r\n{INJECTED}: 1"
    with CometApiEmulator() as comet:
        env.update({**runway.env(), **comet.env(), "REENACT_RUNWAY_API_KEY": secret})
        listed = run(["providers", "--json"], env)
        submitted = run(
            ["submit", "--provider", "runway", "--video", video, "--image", image, "--json"], env
        )
    assert listed.code == 0, listed.output
    by_id = {p["id"]: p for p in listed.json()}
    assert not by_id["runway"]["available"]
    reason = by_id["runway"]["reason"]
    assert "REENACT_RUNWAY_API_KEY is not a valid key" in reason
    assert "line break" in reason and "set it again" in reason
    assert by_id["cometapi"]["available"]  # one bad key does not take the others down
    assert submitted.code == 2, submitted.output  # a configuration error
    assert "REENACT_RUNWAY_API_KEY is not a valid key" in submitted.stderr
    for output in (listed.output, submitted.output):
        assert runway.key not in output  # the key itself is never printed
    assert runway.seen == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc def", "spaces"),
        ("abc\tdef", "spaces"),
        ("abc\ndef", "line break"),
        ("abc\x00def", "characters that cannot be sent"),
        ("kéy-123", "characters that cannot be sent"),
        ("abc\x7fdef", "characters that cannot be sent"),
    ],
)
def test_keys_that_are_not_one_visible_ascii_word_are_refused(value: str, problem: str) -> None:
    settings = load_settings(env={"REENACT_COMETAPI_API_KEY": value}, secrets={})
    provider = get_provider("cometapi", settings)
    av = provider.availability()
    assert not av.available
    assert av.reason is not None
    assert av.reason.startswith("REENACT_COMETAPI_API_KEY is not a valid key")
    assert problem in av.reason
    assert value.strip() not in av.reason
    with pytest.raises(ConfigError, match="REENACT_COMETAPI_API_KEY"):
        provider.poll("task-1")


def test_the_variable_named_is_the_one_that_was_read() -> None:
    from_secrets = load_settings(env={}, secrets={"REENACT_LIANGXIN_API_KEY": "a b"})
    av = get_provider("liangxin", from_secrets).availability()
    assert not av.available and "REENACT_LIANGXIN_API_KEY" in (av.reason or "")
    assert "secrets.toml" in (av.reason or "")
    sdk_name = load_settings(env={"RUNWAYML_API_SECRET": "a\nb"}, secrets={})
    av = get_provider("runway", sdk_name).availability()
    assert not av.available and "RUNWAYML_API_SECRET is not a valid key" in (av.reason or "")


def test_good_keys_are_kept_as_given() -> None:
    key = "key_0123456789abcdef-._~+/=" + "x" * 100
    settings = load_settings(env={"REENACT_RUNWAY_API_KEY": f"\t{key} \r\n"}, secrets={})
    config = settings.provider("runway")
    assert config.api_key is not None and config.api_key.get_secret_value() == key
    assert get_provider("runway", settings).availability().available


def test_the_libcurl_poll_path_never_sends_a_header_with_a_line_break() -> None:
    transport = CurlPollTransport(httpx.HTTPTransport())
    with RawServer() as server, httpx.Client(transport=transport) as client:
        assert client.get(f"{server.url}/ok", headers={"X-Fine": "1"}).status_code == 200
        for value in ("Bearer k\r\nX-Injected: 1", "Bearer k\nX-Injected: 1", "k\rX"):
            with pytest.raises(httpx.LocalProtocolError):
                client.get(f"{server.url}/poll", headers={"Authorization": value})
        heads = server.requests()
    assert len(heads) == 1 and heads[0].startswith(b"GET /ok ")
    assert not any(INJECTED.lower().encode() in h.lower() for h in heads)


def test_a_bad_key_handed_to_the_http_base_is_a_configuration_error_not_a_retried_send() -> None:
    sleeps: list[float] = []
    with RawServer(json.dumps({"id": "x"}).encode()) as server:
        client = HttpClient(
            provider_id="runway",
            provider_name="Runway",
            base_url=server.url,
            api_key=SecretStr(f"k\r\n{INJECTED}: 1"),
            key_variable="REENACT_RUNWAY_API_KEY",
            options=HttpOptions(sleep=sleeps.append),
        )
        try:
            with pytest.raises(ConfigError, match="REENACT_RUNWAY_API_KEY"):
                client.call("GET", "/v1/tasks/1", idempotent=True)  # a poll: libcurl
            with pytest.raises(ConfigError, match="REENACT_RUNWAY_API_KEY"):
                client.call("POST", "/v1/character_performance", json_body={}, idempotent=False)
        finally:
            client.close()
        heads = server.requests()
    assert heads == []
    assert sleeps == []  # refused, not retried as if the connection had dropped
