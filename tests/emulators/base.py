"""The shared machinery of every provider emulator: a real HTTP server on 127.0.0.1, a task
lifecycle, switchable faults, request counting, result files and a control endpoint.

Each provider module adds only its routes and its wire shapes (see providers.md).

Out-of-process control (for the browser and CLI tests):
    POST /_control {"action": "fault", "kind": "rate_limit", "route": "poll", "times": 2, ...}
    POST /_control {"action": "configure", "polls_to_finish": 2, "fail_reason": "..."}
    POST /_control {"action": "fail_task", "task_id": "...", "reason": "...", "code": "..."}
    POST /_control {"action": "add_task"}              -> {"task_id": ...} (a task made elsewhere)
    POST /_control {"action": "clear_faults"} | {"action": "reset"}
    GET  /_control                                     -> counters
    GET  /_control/tasks/<id>                          -> one task's state and poll times
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.emulators.media import tiny_mp4

HOST = "127.0.0.1"

FAULT_KINDS = (
    "rate_limit",  # 429 + Retry-After (param retry_after: seconds or an HTTP-date)
    "status",  # an HTTP error in the provider's shape (param status, code, message)
    "html",  # an HTML page instead of JSON (param status, default 200)
    "garbage",  # unreadable non-JSON text with HTTP 200
    "slow",  # do the work, then wait `delay` seconds before answering (a read timeout)
    "drop",  # do the work, then close the connection without answering
    "auth",  # answer as if the key were wrong
    "credits",  # the provider's "out of credits" answer
    "not_found",  # the provider's "no such task" answer
    "invalid",  # the provider's "invalid input" answer naming `field`
    "body_error",  # HTTP 200 with an error code in the body (LiangXin; param code, message)
)
# "storage" is the upload bucket (no bearer auth), like S3 behind Runway's uploads API.
ROUTES = ("create", "poll", "cancel", "upload", "storage", "any")


@dataclass
class Fault:
    kind: str
    route: str = "any"
    times: int | None = 1  # None = until cleared
    status: int | None = None
    retry_after: str | None = "1"
    delay: float = 1.0
    code: int | str | None = None
    message: str | None = None
    field: str | None = None


@dataclass
class Lifecycle:
    """How fast tasks move. Poll-based by default (deterministic and fast for tests);
    time-based when `seconds_to_finish` is set (benchmarks, browser tests)."""

    queued_polls: int = 1
    polls_to_finish: int = 3
    queued_seconds: float = 0.0
    seconds_to_finish: float | None = None


@dataclass
class Config:
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    fail_reason: str | None = None  # tasks created from now on fail with this reason
    fail_code: str | None = None  # e.g. Runway "SAFETY.INPUT.IMAGE", LiangXin "501"
    throttled: bool = False  # Runway/makevid: the queued phase reports THROTTLED
    not_exist_seconds: float = 0.0  # CometAPI: task_not_exist for this long after create
    not_exist_polls: int = 0  # CometAPI: ... or for this many polls
    expire_results: int | None = None  # 403/404 on /files/* (an expired result link)
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific switches


@dataclass
class Fetched:
    """One input link the emulator fetched at create."""

    url: str
    head_status: int | None = None  # the HEAD's answer (a "head" fetch), else None
    status: int | None = None  # the last answer (the GET's once it got that far)
    content_type: str = ""
    content_length: str | None = None
    body: bytes = b""


@dataclass
class EmuTask:
    id: str
    created: float
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    polls: int = 0  # polls that reached the task (they advance the lifecycle)
    requests: int = 0  # every poll/cancel request naming this task, faulted ones included
    request_times: list[float] = field(default_factory=list)
    fail_reason: str | None = None
    fail_code: str | None = None
    throttled: bool = False
    not_exist_until: float = 0.0
    not_exist_polls: int = 0
    hidden_polls: int = 0  # polls answered "no such task" (they do not advance the lifecycle)
    canceled: bool = False
    deleted: bool = False
    finished_at: float | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200, **kw: Any) -> Response:
        return cls(status=status, body=json.dumps(data).encode(), **kw)


HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


class Emulator:
    """Base of every provider emulator. Use as a context manager or call start()/stop()."""

    provider_id: ClassVar[str]
    key_prefix: ClassVar[str] = "emu"

    def __init__(self, key: str | None = None, port: int = 0, **config: Any) -> None:
        self.key = key or f"{self.key_prefix}-{secrets.token_hex(12)}"
        self._port = port
        self.lock = threading.Lock()
        self.config = Config()
        self.configure(**config)
        self.tasks: dict[str, EmuTask] = {}
        self.faults: list[Fault] = []
        self.route_counts: dict[str, int] = {}
        self.create_count = 0
        self.files: dict[str, tuple[bytes, str]] = {}
        # Input links fetched at create (configure(fetch_inputs=...)): what each answered.
        self.fetched: list[Fetched] = []
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def fetch_input(self, url: str, kind: str) -> str | None:
        """With `configure(fetch_inputs=...)`, fetch an input link at create. CometAPI and
        LiangXin do not document how they fetch a link; two fetchers are modelled, both with
        no redirects, a 200 with a Content-Type of the expected kind (`image`/`video`) and a
        Content-Length the body matches:

        * `True` or `"get"`: a downloader, one GET (the headers from its answer);
        * `"head"`: the rule Runway documents for its own API's URL inputs, a HEAD first,
          then the GET. A link presigned for GET answers that HEAD 403 on S3 (SigV4 signs the
          method): such a provider needs REENACT_S3_PUBLIC_BASE_URL (services/storage.py).

        None when the link is usable, else what is wrong (the create is refused with it).
        Only 127.0.0.1 links are fetched: test traffic stays on loopback. `before_fetch`
        (a callable given the link) runs first: a provider whose queue fetches later."""
        mode = self.config.extra.get("fetch_inputs")
        if not mode:
            return None
        before = self.config.extra.get("before_fetch")
        if callable(before):
            before(url)
        import urllib.error
        import urllib.request

        if urlsplit(url).hostname not in ("127.0.0.1", "::1"):
            return f"{url[:60]} is not a loopback link"

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kw: Any) -> None:
                return None

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        record = Fetched(url=url)
        self.fetched.append(record)
        try:
            if mode == "head":
                with opener.open(urllib.request.Request(url, method="HEAD"), timeout=10) as head:
                    record.head_status = record.status = head.status
                    record.content_type = head.headers.get("Content-Type", "")
                    record.content_length = head.headers.get("Content-Length")
            with opener.open(url, timeout=30) as got:
                record.status = got.status
                if mode != "head":
                    record.content_type = got.headers.get("Content-Type", "")
                    record.content_length = got.headers.get("Content-Length")
                record.body = got.read()
        except urllib.error.HTTPError as err:
            if mode == "head" and record.head_status is None:
                record.head_status = err.code
            record.status = err.code
            return f"the link answered HTTP {err.code}"
        except OSError as err:
            return f"the link could not be fetched ({err})"
        if not record.content_type.startswith(f"{kind}/"):
            return f"the link's Content-Type is {record.content_type!r}, not {kind}/*"
        if record.content_length is None or int(record.content_length) != len(record.body):
            return "the link's Content-Length is missing or wrong"
        return None

    # ---- lifecycle of the server -------------------------------------------------------------
    def start(self) -> Emulator:
        emulator = self

        class Handler(_Handler):
            emu = emulator

        server = _Server((HOST, self._port), Handler)
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"{self.provider_id}-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        # A connection wakes the serve loop at once instead of at its next poll tick.
        with (
            contextlib.suppress(OSError),
            socket.create_connection(server.server_address[:2], timeout=0.5),
        ):
            pass
        stopper.join()
        server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self.server is not None, "start the emulator first"
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        """Variables that point the app and the CLI at this emulator."""
        pid = self.provider_id.upper()
        return {
            f"REENACT_{pid}_API_KEY": self.key,
            f"REENACT_{pid}_BASE_URL": self.url,
            # Results are served from 127.0.0.1, which downloads refuse by default.
            "REENACT_ALLOW_PRIVATE_URLS": "1",
        }

    # ---- switches ----------------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        """Change lifecycle speed (queued_polls, polls_to_finish, queued_seconds,
        seconds_to_finish) or any Config field; unknown names go to provider `extra`."""
        lifecycle_names = {f.name for f in fields(Lifecycle)}
        config_names = {f.name for f in fields(Config)} - {"lifecycle", "extra"}
        for name, value in changes.items():
            if name in lifecycle_names:
                setattr(self.config.lifecycle, name, value)
            elif name in config_names:
                setattr(self.config, name, value)
            else:
                self.config.extra[name] = value

    def fault(self, kind: str, route: str = "any", times: int | None = 1, **params: Any) -> Fault:
        """Queue a fault for the next `times` matching requests (None = until cleared)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        f = Fault(kind=kind, route=route, times=times, **params)
        with self.lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.tasks.clear()
            self.route_counts.clear()
            self.create_count = 0
            self.config = Config()

    def fail_task(self, task_id: str, reason: str, code: str | None = None) -> None:
        """Make an existing task fail with this reason when it finishes."""
        with self.lock:
            t = self.tasks[task_id]
            t.fail_reason, t.fail_code = reason, code

    def add_task(self, task_id: str | None = None, body: Any = None) -> str:
        """A task made elsewhere (for tracking), already queued."""
        with self.lock:
            return self._new_task(body or {}, {}, task_id=task_id).id

    def add_file(self, name: str, data: bytes, content_type: str) -> str:
        """Serve an input file at /files/<name> (for URL-only providers); returns its URL."""
        with self.lock:
            self.files[name] = (data, content_type)
        return f"{self.url}/files/{name}"

    # ---- observation -------------------------------------------------------------------------
    def task(self, task_id: str) -> EmuTask:
        with self.lock:
            return self.tasks[task_id]

    def poll_counts(self) -> dict[str, int]:
        """Requests per task id (polls and cancels, faulted and refused ones included)."""
        with self.lock:
            return {tid: t.requests for tid, t in self.tasks.items()}

    def poll_times(self, task_id: str) -> list[float]:
        """time.monotonic() of every request naming this task (same clock as the tests)."""
        with self.lock:
            return list(self.tasks[task_id].request_times)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "provider": self.provider_id,
                "creates": self.create_count,
                "tasks": len(self.tasks),
                "polls": sum(t.requests for t in self.tasks.values()),
                "routes": dict(self.route_counts),
                "faults_pending": len(self.faults),
            }

    def result_url(self, task_id: str) -> str:
        return f"{self.url}/files/{task_id}.mp4"

    # ---- task model --------------------------------------------------------------------------
    def new_task_id(self) -> str:
        return str(uuid.uuid4())

    def _new_task(self, body: Any, headers: dict[str, str], task_id: str | None = None) -> EmuTask:
        """Caller holds the lock."""
        now = time.monotonic()
        c = self.config
        t = EmuTask(
            id=task_id or self.new_task_id(),
            created=now,
            body=body,
            headers={k: v for k, v in headers.items() if k != "authorization"},
            fail_reason=c.fail_reason,
            fail_code=c.fail_code,
            throttled=c.throttled,
            not_exist_until=now + c.not_exist_seconds,
            not_exist_polls=c.not_exist_polls,
        )
        self.tasks[t.id] = t
        return t

    def create_task(self, req: Request) -> EmuTask:
        with self.lock:
            self.create_count += 1
            return self._new_task(req.json, req.headers)

    def observe(self, task_id: str) -> tuple[EmuTask | None, str, float]:
        """Count one poll and return (task, phase, progress); phase is one of
        queued / running / succeeded / failed / canceled, `missing`, or `hidden` (exists but
        not visible yet: CometAPI's task_not_exist)."""
        now = time.monotonic()
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None or t.deleted:
                return None, "missing", 0.0
            t.polls += 1
            if now < t.not_exist_until or t.hidden_polls < t.not_exist_polls:
                t.hidden_polls += 1
                return t, "hidden", 0.0
            return t, *self._phase(t, now)

    def _phase(self, t: EmuTask, now: float) -> tuple[str, float]:
        if t.canceled:
            return "canceled", 0.0
        lc = self.config.lifecycle
        if lc.seconds_to_finish is not None:
            age = now - t.created
            if age < lc.queued_seconds:
                return "queued", 0.0
            if age >= lc.seconds_to_finish:
                return self._done(t, now), 1.0
            span = max(1e-9, lc.seconds_to_finish - lc.queued_seconds)
            return "running", round((age - lc.queued_seconds) / span, 3)
        k = t.polls - t.hidden_polls
        if k <= lc.queued_polls and k < lc.polls_to_finish:
            return "queued", 0.0
        if k >= lc.polls_to_finish:
            return self._done(t, now), 1.0
        span = max(1, lc.polls_to_finish - lc.queued_polls)
        return "running", round((k - lc.queued_polls) / span, 3)

    def _done(self, t: EmuTask, now: float) -> str:
        if t.finished_at is None:
            t.finished_at = now
        return "failed" if t.fail_reason else "succeeded"

    def is_finished(self, task_id: str) -> bool:
        with self.lock:
            t = self.tasks.get(task_id)
            return bool(t and t.finished_at and not t.fail_reason)

    # ---- what subclasses provide -------------------------------------------------------------
    def route_of(self, req: Request) -> str | None:
        """'create' | 'poll' | 'cancel' | 'upload' | 'storage' | None (unknown path)."""
        raise NotImplementedError

    def task_id_of(self, req: Request) -> str | None:
        """The task a poll/cancel request names (for per-task request counting)."""
        raise NotImplementedError

    def handle(self, route: str, req: Request) -> Response:
        raise NotImplementedError

    def error(self, kind: str, status: int, message: str, fault: Fault | None = None) -> Response:
        """The provider's own error shape. `kind` is a FAULT_KINDS name or 'server'."""
        return Response.json({"error": message}, status=status)

    def auth_ok(self, req: Request) -> bool:
        return req.bearer == self.key

    def auth_error(self) -> Response:
        return self.error("auth", 401, "Invalid API key")

    # ---- dispatch ----------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        if req.path == "/_control" or req.path.startswith("/_control/"):
            return self._control(req)
        if req.path.startswith("/files/"):
            return self._file(req)
        route = self.route_of(req)
        if route is None:
            return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        tid = self.task_id_of(req) if route in ("poll", "cancel") else None
        with self.lock:
            self.route_counts[route] = self.route_counts.get(route, 0) + 1
            t = self.tasks.get(tid) if tid else None
            if t is not None:
                t.requests += 1
                t.request_times.append(time.monotonic())
            fault = self._take_fault(route)
        after: Fault | None = None
        if fault is not None:
            if fault.kind in ("slow", "drop"):
                after = fault
            else:
                return self._fault_response(fault)
        if route != "storage" and not self.auth_ok(req):
            resp = self.auth_error()
        else:
            resp = self.handle(route, req)
        if after is not None:
            resp.delay = after.delay if after.kind == "slow" else 0.0
            resp.drop = after.kind == "drop"
        return resp

    def _take_fault(self, route: str) -> Fault | None:
        for f in self.faults:
            if f.route in (route, "any"):
                if f.times is not None:
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                return f
        return None

    def _fault_response(self, f: Fault) -> Response:
        if f.kind == "rate_limit":
            resp = self.error("rate_limit", 429, f.message or "Too many requests", f)
            if f.retry_after is not None:
                resp.headers["Retry-After"] = f.retry_after
            return resp
        if f.kind == "html":
            return Response(f.status or 200, HTML_PAGE, "text/html; charset=utf-8")
        if f.kind == "garbage":
            return Response(f.status or 200, b"upstream said: ok?? \x00\x01", "text/plain")
        if f.kind == "auth":
            return self.auth_error()
        if f.kind == "credits":
            return self.error(
                "credits", f.status or 402, f.message or "Insufficient credits for this request", f
            )
        if f.kind == "not_found":
            return self.error("not_found", f.status or 404, f.message or "Task not found", f)
        if f.kind == "invalid":
            name = f.field or "image"
            return self.error("invalid", f.status or 400, f.message or f"{name} is invalid", f)
        if f.kind == "body_error":
            return self.error("body_error", 200, f.message or "error", f)
        status = f.status or 500
        return self.error("server", status, f.message or "Internal server error", f)

    def _file(self, req: Request) -> Response:
        name = req.path[len("/files/") :]
        if self.config.expire_results:
            status = self.config.expire_results
            return Response(
                status,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                b"<Message>Request has expired</Message></Error>",
                "application/xml",
            )
        with self.lock:
            stored = self.files.get(name)
        if stored is None and name.endswith(".mp4") and self.is_finished(name[:-4]):
            stored = (tiny_mp4(), "video/mp4")
        if stored is None:
            return Response(404, b"Not Found", "text/plain")
        data, ctype = stored
        return Response(
            200,
            b"" if req.method == "HEAD" else data,
            ctype,
            headers={"Content-Length": str(len(data))},
        )

    def _control(self, req: Request) -> Response:
        if req.method == "GET":
            if req.path.startswith("/_control/tasks/"):
                tid = req.path.rsplit("/", 1)[-1]
                with self.lock:
                    t = self.tasks.get(tid)
                    if t is None:
                        return Response.json({"error": "no such task"}, 404)
                    return Response.json(asdict(t))
            return Response.json(self.stats())
        data = req.json or {}
        action = data.pop("action", None)
        try:
            if action == "fault":
                self.fault(data.pop("kind"), **data)
            elif action == "configure":
                self.configure(**data)
            elif action == "fail_task":
                self.fail_task(data["task_id"], data["reason"], data.get("code"))
            elif action == "add_task":
                return Response.json({"task_id": self.add_task(data.get("task_id"))})
            elif action == "clear_faults":
                self.clear_faults()
            elif action == "reset":
                self.reset()
            else:
                return Response.json({"error": f"unknown action {action!r}"}, 400)
        except (KeyError, TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"ok": True, **self.stats()})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for handlers parked on a keep-alive socket or a "slow" fault.
    block_on_close = False
    # Read by listen() in the constructor: 1,000 tasks polled at once must not be refused.
    request_queue_size = 1024


class _Handler(BaseHTTPRequestHandler):
    emu: ClassVar[Emulator]
    protocol_version = "HTTP/1.1"  # keep-alive, like real providers
    # Headers and body go out in two writes; with Nagle on, keep-alive requests stall ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.emu.dispatch(req)
        except Exception as exc:  # an emulator bug must show up as a 500, not a hang
            resp = Response.json({"error": f"emulator error: {exc!r}"}, 500)
        if resp.delay:
            time.sleep(resp.delay)
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        with contextlib.suppress(OSError):
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            headers = {"Content-Length": str(len(resp.body)), **resp.headers}
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _serve
