"""S3-compatible object storage (AWS S3, Cloudflare R2, MinIO) through boto3.

Two uses, both optional (REENACT_S3_BUCKET turns them on):

* **Inputs for URL-only providers.** A local file is uploaded once under its content hash
  (`<prefix>inputs/<sha256>/<safe name>`, with its real Content-Type) and handed over as a
  presigned GET link that expires after `presign_expiry_s` — or, with `public_base_url`, a
  plain link under it (a presigned link answers GET only; S3 refuses a HEAD on it). When a
  task ends, its inputs are deleted unless another unfinished task still uses the same
  content (`release_inputs`, under a lock a racing submit waits on: `await_releases`).
* **Archived results.** `<prefix>results/<task id>/result.mp4` is written after the local
  archive; the local file stays a cache, and the /files route streams from the bucket when it
  is gone (another replica archived it, or the cache was cleared).

boto3 is imported on first use: listing providers or opening a page costs nothing without a
bucket. Every boto3/botocore failure becomes a `StorageError` with one sentence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote

from services.config import S3Settings, Settings
from services.dblock import db_lock
from services.errors import ReenactError
from services.publish import safe_name, sha256_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from services.models import Task, TaskInputs
    from services.store import Store

log = logging.getLogger("reenact.storage")

AddressingStyle = Literal["auto", "virtual", "path"]

# Multipart above this size, parts this big, this many in flight (boto3's transfer manager).
_MULTIPART_THRESHOLD = 64 * 1024 * 1024
_PART_SIZE = 16 * 1024 * 1024
_CONCURRENCY = 4
_STREAM_CHUNK = 256 * 1024


class StorageError(ReenactError):
    """The bucket could not be reached or refused a request; `retryable` when trying again
    later may work (network, throttling, a 5xx)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str


@dataclass
class ObjectStream:
    """An object (or a byte range of it) being read: `chunks()` yields its body."""

    status: int  # 200, or 206 for a range
    size: int  # the whole object's size
    length: int  # the bytes this answer carries
    content_type: str
    content_range: str | None
    body: Any  # botocore StreamingBody

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.body.iter_chunks(_STREAM_CHUNK)
        finally:
            self.body.close()


class Bucket:
    """One configured bucket; thread-safe (boto3 clients are), built once per process."""

    def __init__(self, config: S3Settings) -> None:
        self.config = config
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    # ---- naming ---------------------------------------------------------------------------
    def input_key(self, digest: str, name: str) -> str:
        return f"{self.config.prefix}inputs/{digest}/{safe_name(name)}"

    def result_key(self, task_id: str, name: str) -> str:
        return f"{self.config.prefix}results/{task_id}/{safe_name(name)}"

    def describe(self) -> str:
        where = f" at {self.config.endpoint_url}" if self.config.endpoint_url else ""
        return f"s3://{self.config.bucket}/{self.config.prefix}{where}"

    # ---- the client -----------------------------------------------------------------------
    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> S3Client:
        import boto3
        from botocore.config import Config

        c = self.config
        secret = lambda v: v.get_secret_value() if v is not None else None  # noqa: E731
        return boto3.session.Session().client(
            "s3",
            endpoint_url=c.endpoint_url,
            region_name=c.region,
            aws_access_key_id=secret(c.access_key_id),
            aws_secret_access_key=secret(c.secret_access_key),
            aws_session_token=secret(c.session_token),
            config=Config(
                # SigV4 everywhere: R2 and MinIO refuse the older signature in presigned links.
                signature_version="s3v4",
                s3={"addressing_style": cast(AddressingStyle, c.addressing_style)},
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 4, "mode": "standard"},
                max_pool_connections=16,
            ),
        )

    def _failed(self, doing: str, exc: BaseException) -> StorageError:
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return StorageError(
                f"Could not {doing}: no credentials for bucket {self.config.bucket}. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile or role).",
                retryable=False,
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId"} or status == 403:
                return StorageError(
                    f"Could not {doing}: bucket {self.config.bucket} answered {code or status} "
                    "(check REENACT_S3_BUCKET, the endpoint and the credentials' permissions).",
                    retryable=False,
                )
            return StorageError(
                f"Could not {doing}: the bucket answered {code or status}.",
                retryable=status >= 500 or status in {0, 429},
            )
        return StorageError(f"Could not {doing}: the bucket could not be reached ({exc}).")

    # ---- objects --------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            got = self.client.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return None
            raise self._failed("read from the bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._failed("read from the bucket", exc) from exc
        return ObjectInfo(int(got["ContentLength"]), str(got.get("ContentType") or ""))

    def put_file(self, path: Path, key: str, content_type: str) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(
                str(path),
                self.config.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=TransferConfig(
                    multipart_threshold=_MULTIPART_THRESHOLD,
                    multipart_chunksize=_PART_SIZE,
                    max_concurrency=_CONCURRENCY,
                ),
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("upload to the bucket", exc) from exc

    def presign(self, key: str, expires_s: int | None = None) -> str:
        """A GET link to `key` that works for `expires_s` (the configured expiry by default).
        Signed locally: no request to the bucket."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.config.bucket, "Key": key},
            ExpiresIn=expires_s or self.config.presign_expiry_s,
        )

    def delete(self, keys: list[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
            batch: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self.client.delete_objects(
                    Bucket=self.config.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise self._failed("delete from the bucket", exc) from exc

    def open(self, key: str, byte_range: str | None = None) -> ObjectStream | None:
        """The object (or `byte_range`, an HTTP Range header value) for streaming; None when
        it is not there."""
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.config.bucket, "Key": key}
        if byte_range:
            args["Range"] = byte_range
        try:
            got = self.client.get_object(**args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"NoSuchKey", "404"}:
                return None
            if code == "InvalidRange":
                raise StorageError(
                    "The requested range is outside the file.", retryable=False
                ) from exc
            raise self._failed("read from the bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._failed("read from the bucket", exc) from exc
        length = int(got["ContentLength"])
        content_range = got.get("ContentRange")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else length
        return ObjectStream(
            status=206 if content_range else 200,
            size=size,
            length=length,
            content_type=str(got.get("ContentType") or "application/octet-stream"),
            content_range=content_range,
            body=got["Body"],
        )

    # ---- inputs ---------------------------------------------------------------------------
    def put_input(self, path: Path, settings: Settings) -> str:
        """Upload `path` under its content hash unless it is there already; its key."""
        digest = input_digest(path, settings)
        key = self.input_key(digest, path.name)
        size = path.stat().st_size
        found = self.head(key)
        if found is None or found.size != size:
            self.put_file(path, key, content_type_of(path))
        return key

    def input_link(self, path: Path, settings: Settings) -> str:
        """The link a URL-only provider fetches `path` from: under REENACT_S3_PUBLIC_BASE_URL
        when set (it answers HEAD and GET), else a presigned GET link, which S3 refuses for a
        HEAD: SigV4 signs the method, and one link cannot be signed for two."""
        key = self.put_input(path, settings)
        base = self.config.public_base_url
        return f"{base}/{quote(key)}" if base else self.presign(key)

    # ---- results --------------------------------------------------------------------------
    def put_result(self, task_id: str, path: Path) -> str:
        key = self.result_key(task_id, path.name)
        self.put_file(path, key, content_type_of(path))
        return key


@lru_cache(maxsize=4)
def _bucket(config: S3Settings) -> Bucket:
    return Bucket(config)


def bucket_for(settings: Settings) -> Bucket | None:
    """The process's client for the configured bucket, or None without REENACT_S3_BUCKET."""
    return _bucket(settings.s3) if settings.s3 is not None else None


def content_type_of(path: Path) -> str:
    """The file's real type from its first bytes (a provider checks Content-Type)."""
    from services.media.sniff import SNIFF_BYTES, sniff

    with path.open("rb") as fh:
        found = sniff(fh.read(SNIFF_BYTES))
    return found.mime if found.kind in {"video", "image"} else "application/octet-stream"


# Hashes of files outside the uploads folder, by identity, so a CLI input is read for its
# hash once per process, not at every create of a comparison.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def input_digest(path: Path, settings: Settings) -> str:
    """The content hash of an input: the folder name of an upload (the app stored it under its
    hash), else the file's SHA-256."""
    real = path.resolve()
    uploads = settings.uploads_dir.resolve()
    if real.parent.parent == uploads and _is_digest(real.parent.name):
        return real.parent.name
    st = real.stat()
    ident = (str(real), st.st_size, st.st_mtime_ns, st.st_ino)
    with _DIGESTS_LOCK:
        found = _DIGESTS.get(ident)
    if found is None:
        found = sha256_of(real)
        with _DIGESTS_LOCK:
            _DIGESTS[ident] = found
    return found


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def input_keys(inputs: TaskInputs, settings: Settings) -> dict[str, str]:
    """The bucket keys a URL-only provider's local inputs are handed over under, each with its
    content digest. Studio records them on the task's row before anything is sent
    (`meta["bucket_inputs"]`), so while the task is unfinished `Store.upload_in_use` finds
    their content in use, whichever run, process or file path sent it."""
    from services.links import is_web_link

    bucket = bucket_for(settings)
    if bucket is None:
        return {}
    keys = {}
    for _, value in inputs.items():
        if is_web_link(value):
            continue
        path = Path(value)
        try:
            digest = input_digest(path, settings)
        except OSError:
            continue  # gone from disk: the create says so; a bucket lifecycle rule sweeps
        keys[bucket.input_key(digest, path.name)] = digest
    return keys


# ---- releasing inputs ---------------------------------------------------------------------
# A release decides "nobody uses this content" and then deletes it; a submit records its use
# on its row and then finds the object there (HEAD) and hands over a link. Without a lock the
# two interleave: check, record, HEAD, delete — a link to a deleted object. So a release
# checks and deletes under an exclusive lock on the content's digest, held in the database
# every replica shares (services/dblock.py), and a submit, once its row says it uses the
# content, waits on that lock (shared) before it looks for the object: a deletion that began
# before the row was written has finished, and one that begins after it sees the row.
_INPUTS_LOCK = "bucket-inputs"

# Test seam: called with (point, digest) at "release:checked" (the lock held, the content
# found unused, nothing deleted yet) and "submit:waiting" (the row written, before the wait),
# so tests/storage can interleave a real release and a real submit at exactly those points.
race_hook: Callable[[str, str], None] | None = None


def _at(point: str, digest: str) -> None:
    if race_hook is not None:
        race_hook(point, digest)


def _digest_of(key: str) -> str:
    return key.rsplit("/", 2)[-2]  # <prefix>inputs/<digest>/<name>


def await_releases(task: Task, store: Store) -> None:
    """Before a submit looks for its inputs in the bucket: wait for any release of the same
    content that decided to delete it before this task's row said it uses it."""
    keys = task.meta.get("bucket_inputs")
    if not isinstance(keys, list):
        return
    for digest in sorted({_digest_of(str(k)) for k in keys}):
        _at("submit:waiting", digest)
        with db_lock(store.engine, _INPUTS_LOCK, digest, shared=True):
            pass


def release_inputs(task: Task, settings: Settings, store: Store) -> list[str]:
    """Delete the bucket copies of an ended task's local inputs that no unfinished task
    still uses; the keys deleted. Only for URL-only providers' tasks (the others never put
    their inputs in the bucket) and only when REENACT_S3_DELETE_INPUTS is on."""
    bucket = bucket_for(settings)
    if bucket is None or not bucket.config.delete_inputs:
        return []
    if task.inputs is None:  # the monitor's claims load rows without their inputs
        task = store.get_task(task.id) or task
    found = input_keys(task.inputs, settings) if task.inputs else {}
    by_digest: dict[str, list[str]] = {}
    for key, digest in found.items():
        by_digest.setdefault(digest, []).append(key)
    deleted: list[str] = []
    # One digest at a time: never two of these locks at once (on SQLite they are one file).
    for digest, keys in sorted(by_digest.items()):
        with db_lock(store.engine, _INPUTS_LOCK, digest):
            if store.upload_in_use(digest):
                continue
            _at("release:checked", digest)
            bucket.delete(keys)
        deleted += keys
    if deleted:
        log.info("Deleted %d input(s) of task %s from the bucket", len(deleted), task.id)
    return deleted
