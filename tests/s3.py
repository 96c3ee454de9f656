"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server
(`moto.server.ThreadedMotoServer`, the same Flask app as `moto_server`) on a free port, with one
bucket. Used by tests/storage and the browser test; `env()` points the app and the CLI at it.

moto answers the S3 API (multipart uploads, ranges, HEAD, presigned query signatures) but does
not enforce a presigned link's expiry: the tests check the link's expiry fields instead.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "reenact-test"
# moto accepts any credentials; these stand for the "usual AWS credential variables".
ACCESS_KEY, SECRET_KEY = "AKIDREENACTTEST", "reenact-test-secret"


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


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
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
