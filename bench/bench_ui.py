"""UI figures (issue 4): prints them; never asserts.

1. Tasks page with 10,000 tasks in the store: the data path (COUNT + one page of rows) and a
   whole rerun of pages/tasks.py through AppTest (script, components, rendering to protos).
2. First render after start: from `make run` to the Create page's content visible in
   Chromium (the browser navigates once, as soon as the port accepts connections), beside
   the same figure for a one-line st.App.
3. Database reads per tick of the live cards, for 1, 5 and 20 visible cards.

    .venv/bin/python bench/bench_ui.py
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from services.models import TaskStatus, utcnow  # noqa: E402
from services.store import Store, TaskRow, new_id  # noqa: E402

N_TASKS = 10_000
REPEATS = 15


def _seed(store: Store, n: int) -> None:
    """n tasks in one transaction: mostly finished, a few live (so the list polls)."""
    now = utcnow()
    statuses = [TaskStatus.SUCCEEDED] * 6 + [TaskStatus.FAILED] * 2 + [TaskStatus.CANCELED]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        status = TaskStatus.RUNNING if i < 5 else statuses[i % len(statuses)]
        created = now - timedelta(seconds=n - i)
        rows.append(
            {
                "id": new_id(),
                "provider": ("local", "runway", "cometapi")[i % 3],
                "provider_task_id": f"p-{i}",
                "status": status.value,
                "progress": 0.4 if status is TaskStatus.RUNNING else 1.0,
                "error": "The provider refused the input." if status is TaskStatus.FAILED else None,
                "created_at": created,
                "updated_at": created,
                "started_at": created,
                "finished_at": None if status is TaskStatus.RUNNING else created,
                "inputs": {"video": "/v.mp4", "image": "/i.png"},
                "options": {},
                "meta": {},
                "tracked": 0,
                "poll_failures": 0,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(TaskRow), rows)


def _ms(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples) * 1000:.1f} ms, "
        f"p90 {sorted(samples)[int(len(samples) * 0.9) - 1] * 1000:.1f} ms"
    )


def bench_tasks_page(data_dir: Path) -> None:
    os.environ["REENACT_DATA_DIR"] = str(data_dir)
    store = Store(f"sqlite:///{data_dir / 'reenact.db'}")
    t0 = time.perf_counter()
    _seed(store, N_TASKS)
    print(f"seeded {N_TASKS:,} tasks in {time.perf_counter() - t0:.1f} s")

    data: list[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        store.count_tasks()
        store.list_tasks(limit=25, offset=0)
        data.append(time.perf_counter() - t)
    print(f"tasks page data path (COUNT + 25 rows): {_ms(data)}")
    filtered: list[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        store.count_tasks(provider=["runway"], status=[TaskStatus.FAILED])
        store.list_tasks(provider=["runway"], status=[TaskStatus.FAILED], limit=25, offset=100)
        filtered.append(time.perf_counter() - t)
    print(f"tasks page data path, filtered, page 5: {_ms(filtered)}")
    store.close()

    from streamlit.testing.v1 import AppTest

    # Through the app's navigation, as a visitor opens it: its rows link to other pages,
    # which only st.navigation knows.
    at = AppTest.from_file(str(ROOT / "ui.py"), default_timeout=60)
    at.switch_page("pages/tasks.py")
    at.run()  # imports, first connection, caches
    assert not at.exception, at.exception
    reruns: list[float] = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t)
    print(f"tasks page full rerun via AppTest ({N_TASKS:,} tasks in the store): {_ms(reruns)}")


def bench_reads_per_tick() -> None:
    from streamlit.testing.v1 import AppTest

    for n in (1, 5, 20):
        at = AppTest.from_function(_tick_probe, args=(n,), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        full, tick = at.session_state["full_run_reads"], at.session_state["tick_reads"]
        print(
            f"{n:>2} live cards: {full} store read(s) in the page's own run (the list), "
            f"{tick} read(s) per refresh tick ({tick / n:.2f} per card); provider calls: 0"
        )


def _tick_probe(n: int) -> None:
    """Counts the SQL statements one refresh of the cards' fragment makes."""
    import streamlit as st
    from sqlalchemy import event

    from components.common import get_studio
    from components.task_card import _cards, task_cards
    from services.models import TaskStatus

    store = get_studio().store
    ids = []
    for _ in range(n):
        task, _c = store.create_task("runway", status=TaskStatus.DRAFT)
        store.update_task(task.id, status=TaskStatus.RUNNING, progress=0.3)
        ids.append(task.id)
    counter = {"n": 0}

    def count(*_args: object) -> None:
        counter["n"] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        tasks = store.get_tasks(ids)
        task_cards(tasks, key="bench", columns=3)
        st.session_state["full_run_reads"] = counter["n"]
        counter["n"] = 0
        # What a `run_every` tick executes: the fragment body without prefetched rows (a
        # second key only because element keys must be unique within one script run).
        _cards(ids, "bench_tick", 3, True, False)
        st.session_state["tick_reads"] = counter["n"]
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_render(
    browser: Any, cwd: Path, env: dict[str, str], ready: Any, *, make: bool
) -> tuple[float, float]:
    """Seconds from the start command (`make run`, or `streamlit run app.py`) to (HTML
    served, the page's own content visible)."""
    port = _free_port()
    page = browser.new_page()
    if make:
        command = ["make", "--no-print-directory", "run", f"PORT={port}"]
    else:
        command = [
            str(Path(sys.executable).parent / "streamlit"),
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ]
    t0 = time.perf_counter()
    # Its own process group: `make` starts streamlit as a child, and both must go.
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # A cheap TCP probe until the server listens, then one navigation: retrying page.goto
        # instead makes Chromium render an error page every few ms on the same two cores the
        # server is starting on, which slowed (and blurred) what is being measured.
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.perf_counter() - t0 > 30 or proc.poll() is not None:
                    raise
                time.sleep(0.01)
        page.goto(f"http://127.0.0.1:{port}/", timeout=10_000)
        served = time.perf_counter() - t0
        ready(page)
        return served, time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        page.close()


def bench_first_render(data_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        print("first render: skipped (no /usr/bin/chromium)")
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")}
    env["REENACT_DATA_DIR"] = str(data_dir)
    # The floor: the same measurement for a one-line st.App on the same machine and load.
    bare = data_dir.parent / "bare-app"
    bare.mkdir(parents=True, exist_ok=True)
    (bare / "hello.py").write_text('import streamlit as st\nst.write("ready")\n')
    (bare / "app.py").write_text('import streamlit as st\napp = st.App("hello.py")\n')

    def ours_ready(page: Any) -> None:
        page.get_by_text("Driving video", exact=True).wait_for(timeout=30_000)
        page.get_by_role("heading", name="Providers").wait_for(timeout=30_000)

    def bare_ready(page: Any) -> None:
        page.get_by_text("ready", exact=True).wait_for(timeout=30_000)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        medians = {}
        for name, cwd, ready, make in (
            ("Reenact Studio, `make run`", ROOT, ours_ready, True),
            ("bare st.App, `streamlit run` (floor)", bare, bare_ready, False),
        ):
            runs = [_first_render(browser, cwd, env, ready, make=make) for _ in range(5)]
            medians[name] = statistics.median(c for _, c in runs)
            print(
                f"first render after start, {name}: "
                + ", ".join(f"{c:.2f} s" for _, c in runs)
                + f" (median {medians[name]:.2f} s; HTML served after "
                f"{statistics.median(s for s, _ in runs):.2f} s)"
            )
        ours, floor = medians.values()
        print(f"first render: {ours / floor:.2f}x the bare app's, {ours - floor:+.2f} s")
        browser.close()


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # AppTest's "no runtime" chatter
    with tempfile.TemporaryDirectory() as tmp:
        bench_tasks_page(Path(tmp) / "big")
        bench_reads_per_tick()
        bench_first_render(Path(tmp) / "fresh")


if __name__ == "__main__":
    main()
