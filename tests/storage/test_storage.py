"""Object storage against a real S3-compatible server on 127.0.0.1 (moto's standalone server)
and the real CometAPI/LiangXin emulators fetching the presigned links: uploads once by content
hash, links a provider can fetch (HEAD, Content-Type, Content-Length), the route each provider
takes, deletion when a task ends, results written to the bucket."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from services.config import Settings, load_settings
from services.errors import InputError
from services.models import Task, TaskInputs, TaskStatus
from services.monitor import Monitor
from services.publish import InputRoute, input_route, link_for_file, route_sentence, sha256_of
from services.storage import bucket_for
from services.studio import Studio
from tests.emulators import CometApiEmulator, LiangXinEmulator
from tests.s3 import S3Server


def _settings(tmp_path: Path, env: dict[str, str]) -> Settings:
    return load_settings(env={"REENACT_DATA_DIR": str(tmp_path / "data"), **env}, secrets={})


def _inputs(tmp_path: Path) -> TaskInputs:
    from tests.mediagen import make_image, make_video

    video = make_video(tmp_path / "drive.mp4", size=(160, 90), seconds=3.0, fps=8)
    image = make_image(tmp_path / "face.png", size=(320, 180))
    return TaskInputs(video=str(video), image=str(image))


def _fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def _expiry_of(link: str) -> datetime:
    query = parse_qs(urlsplit(link).query)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))


def _wait_until_expired(link: str) -> None:
    """Until S3's clock is past the link's expiry (X-Amz-Date has whole seconds)."""
    left = (_expiry_of(link) - datetime.now(UTC)).total_seconds()
    if left >= 0:
        threading.Event().wait(left + 1.05)
    assert datetime.now(UTC) > _expiry_of(link)


def test_an_input_is_uploaded_once_by_content_hash_and_its_link_serves_it(
    tmp_path: Path, s3_server: S3Server
) -> None:
    settings = _settings(tmp_path, {**s3_server.env(), "REENACT_S3_PRESIGN_EXPIRY_S": "900"})
    inputs = _inputs(tmp_path)
    video = Path(inputs.video)
    copy = tmp_path / "same take.mp4"
    copy.write_bytes(video.read_bytes())
    first = link_for_file(video, settings, provider_name="CometAPI")
    again = link_for_file(video, settings, provider_name="CometAPI")
    digest = sha256_of(video)
    key = f"studio/inputs/{digest}/drive.mp4"
    assert s3_server.keys("studio/") == [key]
    assert urlsplit(first).path == f"/{s3_server.bucket}/{key}"
    assert urlsplit(again).path == urlsplit(first).path
    # Same bytes under another name: another name in the bucket, never a second hash.
    other = link_for_file(copy, settings)
    assert urlsplit(other).path.endswith(f"/inputs/{digest}/same-take.mp4")

    status, headers, body = _fetch(first)
    assert status == 200 and body == video.read_bytes()
    assert headers["content-type"] == "video/mp4"
    assert int(headers["content-length"]) == video.stat().st_size
    # A presigned link is signed for GET: S3 refuses a HEAD on it (SigV4 signs the method).
    assert _fetch(first, "HEAD")[0] == 403
    image_link = link_for_file(Path(inputs.image), settings)
    assert _fetch(image_link)[1]["content-type"] == "image/png"

    # The link expires after the configured time, signed at the moment it was made.
    query = parse_qs(urlsplit(first).query)
    assert query["X-Amz-Expires"] == ["900"]
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed).total_seconds()) < 60
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDREENACTTEST/")


def test_each_provider_gets_the_first_route_its_input_rules_allow(
    tmp_path: Path, s3_server: S3Server
) -> None:
    nothing = _settings(tmp_path, {})
    public = _settings(tmp_path, {"REENACT_PUBLIC_URL": "https://studio.example.org"})
    both = _settings(
        tmp_path, {**s3_server.env(), "REENACT_PUBLIC_URL": "https://studio.example.org"}
    )
    assert input_route(False, nothing) is InputRoute.PROVIDER  # Runway, the local engine
    assert input_route(True, nothing) is InputRoute.NONE
    assert input_route(True, public) is InputRoute.PUBLIC_URL
    assert input_route(True, both) is InputRoute.BUCKET  # the bucket before a public URL
    assert input_route(False, both) is InputRoute.PROVIDER
    assert "bucket reenact-test" in route_sentence(InputRoute.BUCKET, both, "CometAPI")
    assert "expires after 6 h" in route_sentence(InputRoute.BUCKET, both, "CometAPI")
    told = route_sentence(InputRoute.NONE, nothing, "LiangXin")
    assert "REENACT_S3_BUCKET" in told and "paste a URL" in told
    with pytest.raises(InputError, match="REENACT_S3_BUCKET"):
        link_for_file(tmp_path / "x.mp4", nothing, provider_name="LiangXin")
    # A public base that is not an http(s) address is ignored (logged): presigned links.
    odd = _settings(tmp_path, {**s3_server.env(), "REENACT_S3_PUBLIC_BASE_URL": "cdn.example"})
    assert odd.s3 is not None and odd.s3.public_base_url is None


def test_cometapi_fetches_the_presigned_links_and_the_inputs_go_when_the_task_ends(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    cometapi_emulator.configure(fetch_inputs=True, polls_to_finish=2)
    studio = Studio(_settings(tmp_path, {**s3_server.env(), **cometapi_emulator.env()}))
    monitor = Monitor(studio, interval_scale=0.001)
    try:
        inputs = _inputs(tmp_path)
        task = studio.submit("cometapi", inputs)
        assert task.status is TaskStatus.QUEUED, task.error
        fetched = {urlsplit(f.url).path.rsplit("/", 1)[1]: f for f in cometapi_emulator.fetched}
        assert set(fetched) == {"drive.mp4", "face.png"}
        assert fetched["drive.mp4"].status == 200
        assert fetched["drive.mp4"].content_type == "video/mp4"
        assert fetched["drive.mp4"].body == Path(inputs.video).read_bytes()
        assert fetched["face.png"].content_type == "image/png"
        assert len(s3_server.keys("studio/inputs/")) == 2

        done = monitor.wait(task.id, timeout=30)
        assert done.status is TaskStatus.SUCCEEDED and done.result_path
        monitor.stop()  # lets the queued deletions finish
        assert s3_server.keys("studio/inputs/") == []
        # The archived result is in the bucket too, byte for byte.
        key = f"studio/results/{task.id}/result.mp4"
        assert s3_server.keys("studio/results/") == [key]
        assert s3_server.body(key) == Path(done.result_path).read_bytes()
    finally:
        monitor.stop()
        studio.close()


def test_liangxin_fetches_the_presigned_links(
    tmp_path: Path, s3_server: S3Server, liangxin_emulator: LiangXinEmulator
) -> None:
    liangxin_emulator.configure(fetch_inputs=True)
    studio = Studio(_settings(tmp_path, {**s3_server.env(), **liangxin_emulator.env()}))
    try:
        task = studio.submit("liangxin", _inputs(tmp_path))
        assert task.status is TaskStatus.QUEUED, task.error
        kinds = sorted(f.content_type for f in liangxin_emulator.fetched)
        assert kinds == ["image/png", "video/mp4"]
        assert all(f.status == 200 for f in liangxin_emulator.fetched)
    finally:
        studio.close()


def test_an_input_another_unfinished_task_uses_stays_until_that_one_ends(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    studio = Studio(_settings(tmp_path, {**s3_server.env(), **cometapi_emulator.env()}))
    try:
        inputs = _inputs(tmp_path)
        store = studio.settings.uploads_dir
        # Two tasks on the same uploaded file (the page's layout: uploads/<sha256>/<name>).
        digest = sha256_of(Path(inputs.video))
        (store / digest).mkdir(parents=True)
        uploaded = store / digest / "drive.mp4"
        uploaded.write_bytes(Path(inputs.video).read_bytes())
        shared = TaskInputs(video=str(uploaded), image=inputs.image)
        first = studio.submit("cometapi", shared)
        second = studio.submit("cometapi", shared, idempotency_key="second")
        assert first.id != second.id
        video_key = f"studio/inputs/{digest}/drive.mp4"
        assert video_key in s3_server.keys("studio/inputs/")
        for task in (first, second):
            monitor = Monitor(studio, interval_scale=0.001)
            assert monitor.wait(task.id, timeout=30).status is TaskStatus.SUCCEEDED
            monitor.stop()  # its deletions are done
            if task is first:  # the second is still queued and needs the file
                assert video_key in s3_server.keys("studio/inputs/")
        assert s3_server.keys("studio/inputs/") == []
    finally:
        studio.close()


def test_a_file_sent_from_two_folders_stays_while_either_task_is_unfinished(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    """CLI files (not the uploads folder): the same content sent by two separate submits —
    two batch rows, two `reenact submit` — is one bucket object; the first task's end must
    not take it from the second (found by tests/scale: the second's create got a 404)."""
    studio = Studio(_settings(tmp_path, {**s3_server.env(), **cometapi_emulator.env()}))
    try:
        inputs = _inputs(tmp_path)
        other = tmp_path / "again"
        other.mkdir()
        for value in (inputs.video, inputs.image):
            assert value is not None
            (other / Path(value).name).write_bytes(Path(value).read_bytes())
        first = studio.submit("cometapi", inputs)
        second = studio.submit(
            "cometapi",
            TaskInputs(video=str(other / "drive.mp4"), image=str(other / "face.png")),
        )
        assert first.run_id is None and second.run_id is None
        keys = s3_server.keys("studio/inputs/")
        assert len(keys) == 2
        for task in (first, second):
            monitor = Monitor(studio, interval_scale=0.001)
            assert monitor.wait(task.id, timeout=30).status is TaskStatus.SUCCEEDED
            monitor.stop()  # its deletions are done
            expected = keys if task is first else []
            assert s3_server.keys("studio/inputs/") == expected
    finally:
        studio.close()


def test_a_queued_render_keeps_its_bucket_inputs_when_a_link_task_ends(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    """Render workers on other machines fetch the bucket's copies of a local task's inputs:
    while that render waits for a worker, a CometAPI task ending on the same files must not
    delete them."""
    env = {**s3_server.env(), **cometapi_emulator.env(), "REENACT_RENDER_WORKERS": "external"}
    studio = Studio(_settings(tmp_path, env))
    try:
        inputs = _inputs(tmp_path)
        render = studio.submit("local", inputs)  # no worker runs: it stays queued
        assert render.meta.get("bucket_inputs"), "the render's bucket keys are on its row"
        by_link = studio.submit("cometapi", inputs)
        keys = s3_server.keys("studio/inputs/")
        assert len(keys) == 2
        monitor = Monitor(studio, interval_scale=0.001)
        assert monitor.wait(by_link.id, timeout=30).status is TaskStatus.SUCCEEDED
        monitor.stop()  # its deletions are done
        assert studio.get(render.id).status is TaskStatus.QUEUED
        assert s3_server.keys("studio/inputs/") == keys
    finally:
        studio.close()


def test_inputs_of_a_failed_task_are_kept_when_deletion_is_turned_off(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    env = {**s3_server.env(), **cometapi_emulator.env(), "REENACT_S3_DELETE_INPUTS": "0"}
    studio = Studio(_settings(tmp_path, env))
    try:
        cometapi_emulator.configure(fail_reason="The render failed upstream.")
        task = studio.submit("cometapi", _inputs(tmp_path))
        monitor = Monitor(studio, interval_scale=0.001)
        assert monitor.wait(task.id, timeout=30).status is TaskStatus.FAILED
        monitor.stop()
        assert len(s3_server.keys("studio/inputs/")) == 2
    finally:
        studio.close()


def test_a_link_that_stopped_working_is_refused_and_short_links_say_so(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    """A link whose object is gone is refused by the provider's fetcher."""
    cometapi_emulator.configure(fetch_inputs=True)
    settings = _settings(tmp_path, {**s3_server.env(), **cometapi_emulator.env()})
    inputs = _inputs(tmp_path)
    link = link_for_file(Path(inputs.video), settings)
    key = urlsplit(link).path.removeprefix(f"/{s3_server.bucket}/")
    s3_server.client.delete_object(Bucket=s3_server.bucket, Key=key)
    assert cometapi_emulator.fetch_input(link, "video") == "the link answered HTTP 404"
    bucket = bucket_for(settings)
    assert bucket is not None
    short = bucket.presign(bucket.put_input(Path(inputs.video), settings), expires_s=60)
    assert parse_qs(urlsplit(short).query)["X-Amz-Expires"] == ["60"]
    assert cometapi_emulator.fetch_input(short, "video") is None


def test_a_presigned_link_works_until_it_expires_then_s3_refuses_it(
    tmp_path: Path, s3_server: S3Server, liangxin_emulator: LiangXinEmulator
) -> None:
    liangxin_emulator.configure(fetch_inputs=True)
    settings = _settings(tmp_path, {**s3_server.env(), **liangxin_emulator.env()})
    bucket = bucket_for(settings)
    assert bucket is not None
    video = Path(_inputs(tmp_path).video)
    link = bucket.presign(bucket.put_input(video, settings), expires_s=1)
    assert liangxin_emulator.fetch_input(link, "video") is None  # within its expiry
    assert liangxin_emulator.fetched[-1].body == video.read_bytes()

    _wait_until_expired(link)
    assert liangxin_emulator.fetch_input(link, "video") == "the link answered HTTP 403"
    status, headers, body = _fetch(link)  # what S3 answers, word for word
    assert status == 403 and headers["content-type"] == "application/xml"
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    assert b"<X-Amz-Expires>1</X-Amz-Expires>" in body
    # The object is still there: only the link ran out.
    assert _fetch(bucket.presign(urlsplit(link).path.split("/", 2)[2]))[0] == 200


def test_a_provider_that_fetches_after_the_link_expired_fails_the_task_with_the_reason(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    """The app's own link, expiring before the provider gets to it (a provider queue longer
    than REENACT_S3_PRESIGN_EXPIRY_S): the create is refused and the task says why."""
    settings = _settings(tmp_path, {**s3_server.env(), **cometapi_emulator.env()})
    assert settings.s3 is not None
    # Below the 60 s the variable allows, so the test need not wait a minute.
    short = settings.model_copy(
        update={"s3": settings.s3.model_copy(update={"presign_expiry_s": 1})}
    )
    cometapi_emulator.configure(fetch_inputs=True, before_fetch=_wait_until_expired)
    studio = Studio(short)
    try:
        task = studio.submit("cometapi", _inputs(tmp_path))
        assert task.status is TaskStatus.FAILED
        assert task.error is not None and "HTTP 403" in task.error, task.error
        assert {f.status for f in cometapi_emulator.fetched} == {403}
    finally:
        studio.close()


def test_a_provider_that_heads_first_gets_a_public_link_when_one_is_configured(
    tmp_path: Path, s3_server: S3Server, cometapi_emulator: CometApiEmulator
) -> None:
    """A fetcher that HEADs before the GET (the rule Runway documents for its own API) is
    refused a presigned GET link by S3; under REENACT_S3_PUBLIC_BASE_URL the same object is
    handed over as a plain link that answers both (moto serves anonymous reads; on S3 or R2
    that is a public custom domain, CloudFront, or a read-only bucket policy on the prefix)."""
    cometapi_emulator.configure(fetch_inputs="head")
    env = {**s3_server.env(), **cometapi_emulator.env()}
    presigned = Studio(_settings(tmp_path / "a", env))
    try:
        refused = presigned.submit("cometapi", _inputs(tmp_path))
        assert refused.status is TaskStatus.FAILED
        assert refused.error is not None and "HTTP 403" in refused.error, refused.error
        assert cometapi_emulator.fetched[0].head_status == 403
    finally:
        presigned.close()

    cometapi_emulator.fetched.clear()
    with s3_server.public_domain() as public:
        settings = _settings(tmp_path / "b", {**env, "REENACT_S3_PUBLIC_BASE_URL": public + "/"})
        sentence = route_sentence(InputRoute.BUCKET, settings, "CometAPI")
        assert f"fetches them from {public} until its task ends" in sentence
        studio = Studio(settings)
        try:
            inputs = _inputs(tmp_path)
            task = studio.submit("cometapi", inputs)
            assert task.status is TaskStatus.QUEUED, task.error
            fetched = cometapi_emulator.fetched
            by_name = {urlsplit(f.url).path.rsplit("/", 1)[1]: f for f in fetched}
            assert by_name["drive.mp4"].head_status == 200
            assert by_name["drive.mp4"].content_type == "video/mp4"
            assert by_name["drive.mp4"].body == Path(inputs.video).read_bytes()
            assert by_name["face.png"].content_type == "image/png"
            assert all(f.url.startswith(f"{public}/studio/inputs/") for f in fetched)
            assert all("X-Amz-Signature" not in f.url for f in fetched)
        finally:
            studio.close()


def test_results_stream_from_the_bucket_with_ranges(tmp_path: Path, s3_server: S3Server) -> None:
    settings = _settings(tmp_path, s3_server.env())
    bucket = bucket_for(settings)
    assert bucket is not None
    result = tmp_path / "result.mp4"
    from tests.emulators.media import tiny_mp4

    result.write_bytes(tiny_mp4())
    key = bucket.put_result("t123", result)
    assert key == "studio/results/t123/result.mp4"
    whole = bucket.open(key)
    assert whole is not None and whole.status == 200 and whole.content_type == "video/mp4"
    assert b"".join(whole.chunks()) == result.read_bytes()
    part = bucket.open(key, "bytes=10-19")
    assert part is not None and part.status == 206 and part.length == 10
    assert part.content_range == f"bytes 10-19/{result.stat().st_size}"
    assert b"".join(part.chunks()) == result.read_bytes()[10:20]
    assert bucket.open("studio/results/nope/result.mp4") is None


def test_a_submit_that_finds_an_input_a_release_is_deleting_waits_and_uploads_it_again(
    tmp_path: Path,
    s3_server: S3Server,
    cometapi_emulator: CometApiEmulator,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The release-vs-submit race, with real parts: task A's create is refused, so A releases
    its inputs (nobody else uses them yet) and stops — lock held — between that check and the
    delete; task B, on the same content, writes its row and must not look for the object
    (HEAD → reuse) until A's delete is done. B then uploads again and hands over a link that
    works; without the lock B would get a link to a deleted object."""
    from services import storage

    cometapi_emulator.configure(fetch_inputs=True, polls_to_finish=1000)
    env = {**s3_server.env(), **cometapi_emulator.env(), "REENACT_DATABASE_URL": db_url}
    studio = Studio(_settings(tmp_path, env))
    inputs = _inputs(tmp_path)
    checked, waiting, go = threading.Event(), threading.Event(), threading.Event()

    def hook(point: str, digest: str) -> None:
        if point == "release:checked" and not checked.is_set():
            checked.set()
            assert go.wait(30), "the test never let the release go on"
        elif point == "submit:waiting":
            waiting.set()

    monkeypatch.setattr(storage, "race_hook", hook)
    results: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            results[name] = studio.submit("cometapi", inputs, idempotency_key=name)
        except BaseException as exc:  # reported by the assertions below
            results[name] = exc

    try:
        cometapi_emulator.fault("invalid", route="create", times=1, field="video")
        a = threading.Thread(target=submit, args=("a",))
        a.start()
        assert checked.wait(30), "A's release never reached its check"
        keys = s3_server.keys("studio/inputs/")
        assert len(keys) == 2  # A uploaded both; its release is about to delete them

        b = threading.Thread(target=submit, args=("b",))
        b.start()
        assert waiting.wait(30), "B never got to wait for the release"
        b.join(0.5)
        assert b.is_alive(), "B went on while A's release held the content"
        assert s3_server.keys("studio/inputs/") == keys
        go.set()
        a.join(30)
        b.join(30)
        task_a, task_b = results["a"], results["b"]
        assert isinstance(task_a, Task) and task_a.status is TaskStatus.FAILED
        assert isinstance(task_b, Task) and task_b.status is TaskStatus.QUEUED, task_b
        # B's links were fetched by the provider, and still work: the objects are there.
        assert s3_server.keys("studio/inputs/") == keys
        handed = cometapi_emulator.fetched[-2:]
        assert [f.status for f in handed] == [200, 200]
        assert all(_fetch(f.url)[0] == 200 for f in handed)
    finally:
        go.set()
        studio.close()
