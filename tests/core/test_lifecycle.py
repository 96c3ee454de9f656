"""The lifecycle's table and moves, applied to a real store (SQLite and PostgreSQL): every move is
compare-and-set, so a writer working from a stale view (or a lost lease) changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from services import lifecycle
from services.errors import ErrorKind
from services.lifecycle import TRANSITIONS, Holder, IllegalTransition, settled
from services.models import ArchiveState, ProviderUpdate, TaskStatus, utcnow
from services.store import Store

S = TaskStatus


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    yield store
    store.close()


def _claimed(store: Store, holder: Holder, provider_task_id: str = "p-1"):
    task, _ = store.create_task("runway", status=S.QUEUED, provider_task_id=provider_task_id)
    now = utcnow()
    [claimed] = store.claim_due(
        now=now, lease_until=now + timedelta(seconds=150), holder=str(holder), task_ids=[task.id]
    )
    return claimed


def test_the_table_has_every_state_and_terminal_states_go_nowhere() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    for state in (S.SUCCEEDED, S.FAILED, S.CANCELED):
        assert TRANSITIONS[state] == frozenset()
    # Only the create call's own outcome leaves `submitting`; nothing goes back to it.
    assert not any(S.SUBMITTING in targets for s, targets in TRANSITIONS.items() if s != S.DRAFT)


def test_a_move_the_table_does_not_allow_raises(store: Store) -> None:
    task, _ = store.create_task("runway", status=S.SUBMITTING)
    done = store.apply(lifecycle.create_failed(task, "Refused.", None, utcnow()))
    assert done is not None and done.status is S.FAILED
    assert done.error_kind is ErrorKind.INVALID_INPUT
    with pytest.raises(IllegalTransition):
        lifecycle.canceled(done, utcnow())
    with pytest.raises(IllegalTransition):
        lifecycle.accepted(done, "p-9", "Runway", utcnow())


def test_accepted_after_a_sweep_marked_it_unknown_still_lands(store: Store) -> None:
    task, _ = store.create_task("runway", status=S.SUBMITTING)
    seen_submitting = task
    unknown = store.apply(lifecycle.outcome_unknown(task, "Could not tell."))
    assert unknown is not None and unknown.status is S.UNKNOWN
    # The slow create came back: the provider's id is never dropped.
    queued = store.apply(lifecycle.accepted(seen_submitting, "p-1", "Runway", utcnow()))
    assert queued is not None and queued.status is S.QUEUED
    assert queued.provider_task_id == "p-1" and queued.error is None


def test_a_poll_moves_the_task_only_while_its_holder_holds_the_lease(store: Store) -> None:
    me, other = Holder.here(), Holder.here()
    task = _claimed(store, me)
    assert task.lease_owner == str(me)
    update = ProviderUpdate(status=S.RUNNING, progress=0.4)
    change = lifecycle.polled(task, update, me, now=utcnow(), interval_s=5, archive_lease_s=1000)
    assert isinstance(change, lifecycle.Change)
    # Someone took the task over meanwhile (the lease ran out): the stale answer is dropped.
    store.update_task(task.id, lease_owner=str(other))
    assert store.apply(change) is None
    assert store.get_task(task.id).status is S.QUEUED
    store.update_task(task.id, lease_owner=str(me))
    moved = store.apply(change)
    assert moved is not None and moved.status is S.RUNNING and moved.progress == 0.4
    assert moved.lease_owner is None and moved.lease_until is None  # released
    assert moved.next_poll_at is not None and moved.next_poll_at > utcnow()


def test_success_takes_the_archive_lease_in_the_same_write(store: Store) -> None:
    me = Holder.here()
    task = _claimed(store, me)
    update = ProviderUpdate(status=S.SUCCEEDED, result_url="https://example.test/r.mp4")
    now = utcnow()
    done = store.apply(
        lifecycle.polled(task, update, me, now=now, interval_s=5, archive_lease_s=1000)
    )
    assert done is not None and done.status is S.SUCCEEDED
    assert done.archive_state is ArchiveState.PENDING and done.lease_owner == str(me)
    assert not settled(done)  # the result is not on disk yet
    # Nobody else (alive) can claim the download while the lease holds.
    assert lifecycle.claim_archive(done, Holder.here(), utcnow(), 1000) is None
    archived = store.apply(lifecycle.archived(done, me, "/data/results/x/result.mp4"))
    assert archived is not None and archived.archive_state is ArchiveState.DONE
    assert archived.lease_owner is None and settled(archived)


def test_a_dead_holders_archive_is_taken_over_at_once(store: Store) -> None:
    me = Holder.here()
    task = _claimed(store, me)
    update = ProviderUpdate(status=S.SUCCEEDED, result_url="https://example.test/r.mp4")
    done = store.apply(
        lifecycle.polled(task, update, me, now=utcnow(), interval_s=5, archive_lease_s=1000)
    )
    dead = Holder(me.host, 2**22 + 12345, "gone")  # no such pid on this host
    store.update_task(done.id, lease_owner=str(dead))
    task = store.get_task(done.id)
    change = lifecycle.claim_archive(task, me, utcnow(), 1000)
    assert change is not None
    taken = store.apply(change)
    assert taken is not None and taken.lease_owner == str(me)


def test_gave_up_and_blocked_archives_settle_until_the_creator_retries(store: Store) -> None:
    me = Holder.here()
    task = _claimed(store, me)
    update = ProviderUpdate(status=S.SUCCEEDED, result_url="https://example.test/r.mp4")
    done = store.apply(
        lifecycle.polled(task, update, me, now=utcnow(), interval_s=5, archive_lease_s=1000)
    )
    gave_up = store.apply(
        lifecycle.archive_gave_up(done, me, "The link has expired.", ErrorKind.NOT_FOUND, 1)
    )
    assert gave_up is not None and gave_up.archive_state is ArchiveState.GAVE_UP
    assert settled(gave_up) and not lifecycle.archive_pending(gave_up)
    # A monitor's sweep leaves it alone; the creator's Retry download brings it back.
    assert lifecycle.claim_archive(gave_up, me, utcnow(), 1000) is None
    again = store.apply(lifecycle.retry_download(gave_up, utcnow()))
    assert again is not None and again.archive_state is ArchiveState.PENDING
    assert again.error is None and not settled(again)
    assert [t.id for t in store.archives_due(utcnow())] == [again.id]


def test_a_callback_brings_a_poll_forward_but_not_a_backoff_or_a_poll_in_flight(
    store: Store,
) -> None:
    now = utcnow()
    task, _ = store.create_task("runway", status=S.QUEUED, provider_task_id="p-1")
    soon = store.update_task(task.id, next_poll_at=now + timedelta(seconds=20))
    change = lifecycle.nudged(soon, now, horizon_s=120)
    assert change is not None
    assert store.apply(change).next_poll_at <= utcnow()
    backoff = store.update_task(task.id, next_poll_at=now + timedelta(seconds=300))
    assert lifecycle.nudged(backoff, now, horizon_s=120) is None
    in_flight = store.update_task(
        task.id, next_poll_at=now + timedelta(seconds=20), lease_until=now + timedelta(seconds=9)
    )
    assert lifecycle.nudged(in_flight, now, horizon_s=120) is None


def test_cancel_keeps_a_result_that_landed_meanwhile(store: Store) -> None:
    me = Holder.here()
    task = _claimed(store, me)
    cancel = lifecycle.canceled(task, utcnow())  # decided from `queued`
    update = ProviderUpdate(status=S.SUCCEEDED, result_url="https://example.test/r.mp4")
    store.apply(lifecycle.polled(task, update, me, now=utcnow(), interval_s=5, archive_lease_s=9))
    assert store.apply(cancel) is None
    assert store.get_task(task.id).status is S.SUCCEEDED
