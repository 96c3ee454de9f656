"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server app (the
same Flask app as `moto_server`) on a free port, with one bucket. Used by tests/storage, the
scale test and the browser test; `env()` points the app and the CLI at it.

moto answers the S3 API (multipart uploads, ranges, HEAD, presigned query signatures) but, in
5.2.5, checks neither a presigned link's expiry nor its signature. `_PresignedLinks` wraps the
app and does what S3 does with a query-signed (SigV4) request: past X-Amz-Date + X-Amz-Expires
it answers 403 AccessDenied "Request has expired", and a signature that does not match the
request — a HEAD on a link presigned for GET, since SigV4 signs the method — answers 403
SignatureDoesNotMatch. Requests signed in their headers (boto3's own calls) pass as before.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "reenact-test"
# moto accepts any credentials; these stand for the "usual AWS credential variables", and
# `_PresignedLinks` checks presigned signatures against them.
ACCESS_KEY, SECRET_KEY = "AKIDREENACTTEST", "reenact-test-secret"
_SECRETS = {ACCESS_KEY: SECRET_KEY}
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_ISO = "%Y-%m-%dT%H:%M:%SZ"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class S3Server:
    url: str
    bucket: str
    client: S3Client

    def env(self, prefix: str = "studio") -> dict[str, str]:
        return {
            "REENACT_S3_BUCKET": self.bucket,
            "REENACT_S3_ENDPOINT_URL": self.url,
            "REENACT_S3_PREFIX": prefix,
            "REENACT_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    @contextmanager
    def public_domain(self) -> Iterator[str]:
        """A read-only front for the bucket's objects, without signatures, on 127.0.0.1: what
        an R2 custom domain or a CloudFront distribution with origin access is (moto's own
        anonymous reads are not S3's: it refuses a HEAD a bucket policy allows). Yields its
        base URL, for REENACT_S3_PUBLIC_BASE_URL."""
        client, bucket = self.client, self.bucket

        class Front(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, *, body: bool) -> None:
                key = unquote(urlsplit(self.path).path.lstrip("/"))
                try:
                    got = client.get_object(Bucket=bucket, Key=key)
                except client.exceptions.NoSuchKey:
                    self.send_error(404)
                    return
                data = got["Body"].read()
                self.send_response(200)
                self.send_header("Content-Type", got.get("ContentType") or "binary/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def _signature(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: str,
    when: str,
    scope: str,
    secret: str,
    signed: str,
) -> str:
    """SigV4 for a query-signed S3 request (the payload is UNSIGNED-PAYLOAD)."""
    canonical_query = "&".join(
        f"{_quote(k)}={_quote(v)}" for k, v in sorted(query) if k != "X-Amz-Signature"
    )
    canonical = "\n".join([method, path, canonical_query, headers, signed, "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", when, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class _PresignedLinks:
    """What S3 refuses in a presigned link, answered the way S3 answers it."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raw_query = str(environ.get("QUERY_STRING", ""))
        if "X-Amz-Signature=" not in raw_query:
            return self.app(environ, start_response)
        query = [
            (unquote(k), unquote(v))
            for k, _, v in (part.partition("=") for part in raw_query.split("&") if part)
        ]
        refused = self._refusal(environ, dict(query), query)
        if refused is None:
            return self.app(environ, start_response)
        code, message, extra = refused
        fields = {"Code": code, "Message": message, **extra, "RequestId": uuid.uuid4().hex[:16]}
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
            + "</Error>"
        ).encode()
        head = environ.get("REQUEST_METHOD") == "HEAD"  # S3 answers a HEAD without a body
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [b"" if head else body]

    def _refusal(
        self, environ: dict[str, Any], params: dict[str, str], query: list[tuple[str, str]]
    ) -> tuple[str, str, dict[str, str]] | None:
        now = datetime.now(UTC)
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=UTC)
            expires_s = int(params["X-Amz-Expires"])
            access_key, scope = params["X-Amz-Credential"].split("/", 1)
            signed_headers = params["X-Amz-SignedHeaders"]
        except (KeyError, ValueError):
            return (
                "AuthorizationQueryParametersError",
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                "X-Amz-Expires parameters.",
                {},
            )
        if expires_s > 604800:
            return (
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is, the given "
                "X-Amz-Expires must be less than 604800 seconds",
                {},
            )
        if now > signed_at + timedelta(seconds=expires_s):
            return (
                "AccessDenied",
                "Request has expired",
                {
                    "X-Amz-Expires": str(expires_s),
                    "Expires": (signed_at + timedelta(seconds=expires_s)).strftime(_ISO),
                    "ServerTime": now.strftime(_ISO),
                },
            )
        secret = _SECRETS.get(access_key)
        if secret is None:
            return (
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                {"AWSAccessKeyId": access_key},
            )
        names = signed_headers.split(";")
        headers = "".join(
            f"{n}:{' '.join(str(environ.get('HTTP_' + n.upper().replace('-', '_'), '')).split())}\n"
            for n in names
        )
        path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/").split("?", 1)[0]
        method = str(environ.get("REQUEST_METHOD", "GET"))
        expected = _signature(
            method, path, query, headers, params["X-Amz-Date"], scope, secret, signed_headers
        )
        if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
                {"AWSAccessKeyId": access_key},
            )
        return None


class _StrictMotoServer:
    """moto's server app behind `_PresignedLinks`, served by werkzeug on a thread (what
    moto's ThreadedMotoServer does, with the app wrapped)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = _PresignedLinks(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    import boto3
    from botocore.config import Config

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = _StrictMotoServer()
    server.start()
    try:
        url = server.url
        # moto keeps its buckets per process, not per server: each test starts from none.
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10
        ).close()
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3Server(url=url, bucket=BUCKET, client=client)
    finally:
        server.stop()
