"""Configuration from the environment, falling back to `.streamlit/secrets.toml`.

Keys are held as `SecretStr` so they never print; nothing here logs or stores them.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# Every provider, in the order pages list them; the registry finds each one's class by id.
PROVIDER_IDS = ("local", "runway", "cometapi", "liangxin", "makevid")
# Every provider but the offline engine needs an API key.
KEYED_PROVIDERS = tuple(pid for pid in PROVIDER_IDS if pid != "local")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ProviderSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    key_source: str | None = None  # "env" | "secrets"
    base_url: str | None = None
    key_variable: str
    # Set (and api_key left None) when the value found cannot be a key: the sentence naming
    # the variable, shown as the provider's reason for being unavailable.
    key_error: str | None = None
    # What one of the provider's credits costs in US dollars, where it reports credits
    # (REENACT_<ID>_USD_PER_CREDIT; None: the provider's published rate, if it has one).
    usd_per_credit: float | None = None


# The scope of a spending cap over every provider together (the others are provider ids).
TOTAL = "total"


class SpendCaps(BaseModel):
    """Spending caps from the environment, in US dollars per UTC day and month, by scope
    (`TOTAL` or a provider id). Caps saved in Settings override these one by one."""

    model_config = ConfigDict(frozen=True)

    day: dict[str, float] = Field(default_factory=dict)
    month: dict[str, float] = Field(default_factory=dict)
    # Sentences for variables that are set but are not an amount: a cap that was meant but
    # cannot be read refuses paid submits with the sentence, rather than not capping at all.
    errors: tuple[str, ...] = ()


class S3Settings(BaseModel):
    """An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO) for inputs handed to URL-only
    providers and for archived results (services/storage.py). Credentials left None come from
    boto3's own chain (AWS_* variables, ~/.aws, an instance role)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    endpoint_url: str | None = None
    prefix: str = ""  # "" or ending in "/"
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    # Presigned input links live this long: past any provider queue before it fetches.
    presign_expiry_s: int = 6 * 3600
    # Delete an input from the bucket once no unfinished task uses it.
    delete_inputs: bool = True
    # "path" for a custom endpoint (MinIO, R2, a bucket name with dots), else boto3's choice.
    addressing_style: str = "auto"
    # Where the bucket's objects are readable without a signature (an R2 custom domain, a
    # CloudFront distribution, a MinIO prefix with anonymous download): inputs are then handed
    # over as `<this>/<key>`, which answers HEAD as well as GET; a presigned link is signed for
    # GET only, and S3 refuses a HEAD on it.
    public_base_url: str | None = None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path
    database_url: str
    public_url: str | None = None
    allow_private_urls: bool = False
    providers: dict[str, ProviderSettings]
    # Per owner: what their uploads (and fetched links) may take, and how long an upload no
    # task uses is kept.
    upload_quota_bytes: int = 20 * 1024**3
    upload_quota_files: int = 1000
    upload_retention_days: float = 7.0
    spend_caps: SpendCaps = Field(default_factory=SpendCaps)
    # Connections each process keeps to a PostgreSQL database (SQLite ignores these): a
    # deployment's processes together need processes × (size + overflow) ≤ the server's
    # max_connections (100 by default), minus what its other clients use.
    db_pool_size: int = 5
    db_max_overflow: int = 5
    s3: S3Settings | None = None
    # "local": each local-engine render is a process started on this machine (the default);
    # "external": renders wait in the database for `reenact worker` processes (any machine).
    render_workers: str = "local"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    def provider(self, provider_id: str) -> ProviderSettings:
        return self.providers.get(provider_id) or ProviderSettings(
            key_variable=f"REENACT_{provider_id.upper()}_API_KEY"
        )

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.uploads_dir, self.results_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)


def _secrets_files() -> list[Path]:
    candidates = (Path.cwd(), PROJECT_ROOT)
    return list(dict.fromkeys(d / ".streamlit" / "secrets.toml" for d in candidates))


def load_secrets() -> dict[str, object]:
    """Flat top-level values of secrets.toml; a broken file counts as empty, never a crash."""
    out: dict[str, object] = {}
    for path in _secrets_files():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for k, v in data.items():
            out.setdefault(k, v)
    return out


def key_problem(value: str) -> str | None:
    """Why `value` (already trimmed) cannot be an API key, or None.

    A key travels as an HTTP header value: it must be one run of visible ASCII characters.
    Anything else cannot be what the provider issued — and a line break in it would end the
    header early and start another (header injection on the libcurl poll path).
    """
    if all("!" <= ch <= "~" for ch in value):
        return None
    if any(ch.isspace() for ch in value):
        return "it contains a line break or spaces"
    return "it contains characters that cannot be sent in an HTTP header"


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def load_settings(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, object] | None = None
) -> Settings:
    env = os.environ if env is None else env
    secrets = load_secrets() if secrets is None else secrets

    def get(name: str) -> tuple[str | None, str | None]:
        # Trimmed: a value pasted with a trailing newline or spaces means the same thing.
        value = (env.get(name) or "").strip()
        if value:
            return value, "env"
        found = secrets.get(name)
        value = "" if found is None else str(found).strip()
        if value:
            return value, "secrets"
        return None, None

    data_dir = Path(get("REENACT_DATA_DIR")[0] or PROJECT_ROOT / "data").expanduser().resolve()
    database_url = database_url_with_driver(
        get("REENACT_DATABASE_URL")[0] or f"sqlite:///{data_dir / 'reenact.db'}"
    )
    providers: dict[str, ProviderSettings] = {}
    for pid in KEYED_PROVIDERS:
        var = f"REENACT_{pid.upper()}_API_KEY"
        read = var
        key, source = get(var)
        if key is None and pid == "runway":
            read = "RUNWAYML_API_SECRET"
            key, source = get(read)
        problem = key_problem(key) if key else None
        key_error = None
        if problem:
            # One bad key must not stop the app or the other providers: this one is
            # unavailable, with a sentence that names the variable and never shows the value.
            where = " in .streamlit/secrets.toml" if source == "secrets" else ""
            key_error = f"{read}{where} is not a valid key ({problem}); set it again."
        providers[pid] = ProviderSettings(
            api_key=SecretStr(key) if key and not problem else None,
            key_source=source,
            base_url=(get(f"REENACT_{pid.upper()}_BASE_URL")[0] or None),
            key_variable=var,
            key_error=key_error,
            usd_per_credit=_amount(get, f"REENACT_{pid.upper()}_USD_PER_CREDIT"),
        )
    providers["local"] = ProviderSettings(key_variable="")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        public_url=(get("REENACT_PUBLIC_URL")[0] or None),
        allow_private_urls=_truthy(get("REENACT_ALLOW_PRIVATE_URLS")[0] or ""),
        providers=providers,
        spend_caps=_spend_caps(get),
        **_upload_limits(get),
        **_pool_limits(get),
        s3=_s3_settings(get),
        render_workers=_render_workers(get),
    )


def _render_workers(get: Callable[[str], tuple[str | None, str | None]]) -> str:
    """REENACT_RENDER_WORKERS: "local" (default) or "external"."""
    raw = (get("REENACT_RENDER_WORKERS")[0] or "local").lower()
    if raw in ("local", "external"):
        return raw
    logging.getLogger("reenact.config").warning(
        "REENACT_RENDER_WORKERS=%r is neither local nor external; using local", raw
    )
    return "local"


# SigV4 presigned links are valid for at most 7 days.
_MAX_PRESIGN_S = 7 * 24 * 3600


def _s3_settings(get: Callable[[str], tuple[str | None, str | None]]) -> S3Settings | None:
    """REENACT_S3_BUCKET (nothing else matters without it), REENACT_S3_ENDPOINT_URL,
    REENACT_S3_PREFIX, REENACT_S3_REGION (else AWS_REGION / AWS_DEFAULT_REGION),
    REENACT_S3_PRESIGN_EXPIRY_S, REENACT_S3_DELETE_INPUTS, REENACT_S3_ADDRESSING_STYLE,
    REENACT_S3_PUBLIC_BASE_URL and the AWS credential variables (also read from secrets.toml)."""
    bucket = get("REENACT_S3_BUCKET")[0]
    if not bucket:
        return None
    endpoint = get("REENACT_S3_ENDPOINT_URL")[0]
    prefix = (get("REENACT_S3_PREFIX")[0] or "").strip("/")
    out: dict[str, Any] = {
        "bucket": bucket,
        "endpoint_url": endpoint,
        "prefix": f"{prefix}/" if prefix else "",
        "region": (
            get("REENACT_S3_REGION")[0] or get("AWS_REGION")[0] or get("AWS_DEFAULT_REGION")[0]
        ),
        "addressing_style": get("REENACT_S3_ADDRESSING_STYLE")[0]
        or ("path" if endpoint else "auto"),
    }
    for var, field in (
        ("AWS_ACCESS_KEY_ID", "access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "secret_access_key"),
        ("AWS_SESSION_TOKEN", "session_token"),
    ):
        value = get(var)[0]
        if value:
            out[field] = SecretStr(value)
    raw = get("REENACT_S3_PRESIGN_EXPIRY_S")[0]
    if raw is not None:
        try:
            expiry = int(float(raw))
        except ValueError:
            expiry = 0
        if 60 <= expiry <= _MAX_PRESIGN_S:
            out["presign_expiry_s"] = expiry
        else:
            logging.getLogger("reenact.config").warning(
                "REENACT_S3_PRESIGN_EXPIRY_S=%r is not a number of seconds from 60 to 604800 "
                "(7 days); using the default",
                raw,
            )
    delete = get("REENACT_S3_DELETE_INPUTS")[0]
    if delete is not None:
        out["delete_inputs"] = _truthy(delete)
    public = (get("REENACT_S3_PUBLIC_BASE_URL")[0] or "").strip().rstrip("/")
    if public.startswith(("https://", "http://")):
        out["public_base_url"] = public
    elif public:
        logging.getLogger("reenact.config").warning(
            "REENACT_S3_PUBLIC_BASE_URL=%r is not an http(s) address; inputs are handed over "
            "as presigned links",
            public,
        )
    return S3Settings(**out)


def database_url_with_driver(url: str) -> str:
    """PostgreSQL URLs as hosting services hand them out (postgres://, postgresql://) go
    through psycopg 3, the driver installed with the app; SQLAlchemy would look for psycopg2."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def _pool_limits(get: Callable[[str], tuple[str | None, str | None]]) -> dict[str, Any]:
    """REENACT_DB_POOL_SIZE (at least 1) and REENACT_DB_MAX_OVERFLOW (0 or more); a value
    that is not such a whole number keeps the default (and says so in the log)."""
    out: dict[str, Any] = {}
    for var, field, least in (
        ("REENACT_DB_POOL_SIZE", "db_pool_size", 1),
        ("REENACT_DB_MAX_OVERFLOW", "db_max_overflow", 0),
    ):
        raw = get(var)[0]
        if raw is None:
            continue
        if not raw.isdigit() or int(raw) < least:
            logging.getLogger("reenact.config").warning(
                "%s=%r is not a whole number of at least %d; using the default", var, raw, least
            )
            continue
        out[field] = int(raw)
    return out


def spend_cap_variable(period: str, scope: str) -> str:
    """The environment variable of one cap: REENACT_SPEND_CAP_DAY_USD (every provider
    together), REENACT_RUNWAY_SPEND_CAP_MONTH_USD (one provider)."""
    prefix = "REENACT_" if scope == TOTAL else f"REENACT_{scope.upper()}_"
    return f"{prefix}SPEND_CAP_{period.upper()}_USD"


def _spend_caps(get: Callable[[str], tuple[str | None, str | None]]) -> SpendCaps:
    found: dict[str, dict[str, float]] = {"day": {}, "month": {}}
    errors: list[str] = []
    for period, caps in found.items():
        for scope in (TOTAL, *KEYED_PROVIDERS):
            var = spend_cap_variable(period, scope)
            raw = get(var)[0]
            if raw is None:
                continue
            value = _dollars(raw)
            if value is None:
                errors.append(
                    f"{var}={raw[:40]!r} is not an amount of US dollars (for example 20 or "
                    "12.50); fix it and restart, or remove it."
                )
            else:
                caps[scope] = value
    return SpendCaps(day=found["day"], month=found["month"], errors=tuple(errors))


def _dollars(raw: str) -> float | None:
    """A non-negative amount ("20", "12.50", "$20"), else None."""
    try:
        value = float(raw.strip().removeprefix("$").strip())
    except ValueError:
        return None
    return value if value >= 0 and value < float("inf") else None


def _amount(get: Callable[[str], tuple[str | None, str | None]], var: str) -> float | None:
    raw = get(var)[0]
    if raw is None:
        return None
    value = _dollars(raw)
    if value is None:
        logging.getLogger("reenact.config").warning(
            "%s=%r is not an amount of US dollars; ignoring it", var, raw
        )
    return value


def _upload_limits(get: Callable[[str], tuple[str | None, str | None]]) -> dict[str, Any]:
    """REENACT_UPLOAD_QUOTA_MB, REENACT_UPLOAD_QUOTA_FILES, REENACT_UPLOAD_RETENTION_DAYS;
    a value that is not a positive number keeps the default (and says so in the log)."""
    out: dict[str, Any] = {}
    for var, field, scale in (
        ("REENACT_UPLOAD_QUOTA_MB", "upload_quota_bytes", 1024 * 1024),
        ("REENACT_UPLOAD_QUOTA_FILES", "upload_quota_files", 1),
        ("REENACT_UPLOAD_RETENTION_DAYS", "upload_retention_days", None),
    ):
        raw = get(var)[0]
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value <= 0:
            logging.getLogger("reenact.config").warning(
                "%s=%r is not a positive number; using the default", var, raw
            )
            continue
        out[field] = value if scale is None else int(value * scale)
    return out
