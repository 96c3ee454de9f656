"""Uploads: a quota per owner, refused files deleted at once (unless a task uses the same
file), and uploads no task uses cleaned after the retention period — on a real SQLite file
and a real uploads folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import InputError
from services.models import TaskInputs, TaskStatus
from services.publish import sha256_of
from services.store import Store
from services.upload_policy import check_quota, discard, remember, sweep


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        env={
            "REENACT_DATA_DIR": str(tmp_path / "data"),
            "REENACT_UPLOAD_QUOTA_MB": "1",
            "REENACT_UPLOAD_QUOTA_FILES": "2",
            "REENACT_UPLOAD_RETENTION_DAYS": "7",
        },
        secrets={},
    )
    settings.ensure_dirs()
    store = Store.open(settings)
    yield settings, store
    store.close()


def _upload(settings, content: bytes, name: str = "clip.mp4") -> Path:  # type: ignore[no-untyped-def]
    staged = settings.data_dir / "staged"
    staged.write_bytes(content)
    folder = settings.uploads_dir / sha256_of(staged)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    staged.replace(path)
    return path


def _age(path: Path, days: float) -> None:
    old = time.time() - days * 86400
    os.utime(path, (old, old))


def test_quota_counts_bytes_and_files_per_owner(env) -> None:  # type: ignore[no-untyped-def]
    settings, store = env
    assert settings.upload_quota_bytes == 1024 * 1024 and settings.upload_quota_files == 2
    remember(store, "ann@example.com", _upload(settings, b"a" * 600_000))
    with pytest.raises(InputError, match=r"does not fit in your upload space: .* of 1\.0 MB"):
        check_quota(store, settings, "ann@example.com", 600_000)
    check_quota(store, settings, "bo@example.com", 600_000)  # someone else's space
    remember(store, "ann@example.com", _upload(settings, b"b" * 10))
    with pytest.raises(InputError, match="You have 2 uploads"):
        check_quota(store, settings, "ann@example.com", 1)
    assert store.upload_usage("ann@example.com") == (600_010, 2)


def test_a_refused_upload_is_deleted_unless_a_task_uses_the_same_file(env) -> None:  # type: ignore[no-untyped-def]
    settings, store = env
    bad = _upload(settings, b"not a video at all")
    remember(store, "local", bad)
    discard(store, settings, bad)
    assert not bad.parent.exists() and store.upload_usage("local") == (0, 0)

    used = _upload(settings, b"used by a task")
    store.create_task("runway", status=TaskStatus.FAILED, inputs=TaskInputs(video=str(used)))
    discard(store, settings, used)
    assert used.is_file()
    # Only files inside uploads/<digest>/ are ever deleted.
    outside = settings.data_dir / "elsewhere.mp4"
    outside.write_bytes(b"x")
    discard(store, settings, outside)
    assert outside.is_file()


def test_unused_uploads_go_after_the_retention_period(env) -> None:  # type: ignore[no-untyped-def]
    settings, store = env
    old_unused = _upload(settings, b"old and unused")
    old_used = _upload(settings, b"old but a task uses it")
    recent = _upload(settings, b"recent")
    reused = _upload(settings, b"old file chosen again today")
    for path in (old_unused, old_used, reused):
        _age(path, 30)
        _age(path.parent, 30)
    store.create_task("local", status=TaskStatus.SUCCEEDED, inputs=TaskInputs(video=str(old_used)))
    remember(store, "local", reused)  # chosen again: counts from now
    fixed = settings.uploads_dir / "fixed"
    fixed.mkdir()
    (fixed / "a-cropped.mp4").write_bytes(b"x")
    _age(fixed / "a-cropped.mp4", 30)
    part = settings.uploads_dir / ".upload-123.part"
    part.write_bytes(b"x")
    _age(part, 2)

    assert sweep(store, settings) == 1
    assert not old_unused.exists() and old_used.is_file() and recent.is_file()
    assert reused.is_file()
    assert not (fixed / "a-cropped.mp4").exists() and not part.exists()
