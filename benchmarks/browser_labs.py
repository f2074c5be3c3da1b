"""What a learner waits for, in the browser (headless Chromium, as the browser tests drive it):

- *Open lab* clicked on the assignment page → the output of a first cell run in the notebook,
  cold (no lab server running, empty browser cache, a kernel from the hub's warm pool) and
  warm (back to the lab: the server runs, the cache is warm, the notebook's kernel is kept);
- *Submit saved notebooks* clicked in the lab → the instant feedback's test results shown;
- the lab's page weight on a cold cache (every response body, the frame's included).

    .venv/bin/python -m benchmarks.browser_labs [--runs 3]

It sets up its own instance as benchmarks/labs.py does (demo data, one released course) and
starts gunicorn, the lab hub and a grading worker, as `make run` does. The baseline, measured in
the same run and the same browser: clicking from the course page to the assignment page (a plain
server-rendered page). Prints `name: value` lines; the issue's aims: cold ≤ 4 s, warm ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    expect,
    sync_playwright,
)

from benchmarks import labs
from lms.lab.hub import free_port

CHROMIUM = "/usr/bin/chromium"
COURSE_PAGE = f"/learn/cohorts/{labs.COHORT}/courses/{labs.COURSE}"
TITLE = "Linear algebra for city traffic"


@contextmanager
def worker(env: dict[str, str]) -> Iterator[None]:
    log = (labs.INSTANCE / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "lms", "worker"],
        cwd=labs.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def signed_in(browser: Browser, base: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(base + "/login")
    page.get_by_label("Email").fill("learner@example.org")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/learn/$"))
    return context, page


def to_assignment(page: Page, base: str) -> float:
    """Baseline: the course page's link to the assignment page, clicked → the page shown."""
    page.goto(base + COURSE_PAGE)
    start = time.perf_counter()
    page.get_by_role("link", name=TITLE).first.click()
    expect(page.get_by_role("button", name="Open lab")).to_be_visible()
    return time.perf_counter() - start


def open_lab_to_output(page: Page, base: str, marker: int) -> float:
    """On the assignment page: Open lab clicked → a new cell's output shown in the notebook."""
    to_assignment(page, base)
    start = time.perf_counter()
    page.get_by_role("button", name="Open lab").click()
    frame = page.frame_locator("iframe.lms-lab-frame")
    frame.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click(timeout=120_000)
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(f"print({marker} * 2)")
    page.keyboard.press("Shift+Enter")
    try:
        expect(
            frame.locator(".jp-OutputArea-output").filter(has_text=str(marker * 2))
        ).to_be_visible(timeout=120_000)
    except AssertionError:
        page.screenshot(path=str(labs.INSTANCE / f"no-output-{marker}.png"))
        raise
    return time.perf_counter() - start


def submit_to_feedback(page: Page) -> float:
    """In the lab: Submit clicked → the instant feedback's test results on the submission page."""
    start = time.perf_counter()
    page.get_by_role("button", name="Submit saved notebooks").click()
    page.wait_for_url(re.compile(r".*/learn/submissions/\d+$"), timeout=60_000)
    expect(page.get_by_text("Tests total")).to_be_visible(timeout=180_000)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    shutil.rmtree(labs.INSTANCE, ignore_errors=True)
    labs.INSTANCE.mkdir(parents=True)
    port, hub_api = free_port(), free_port()
    env = labs.environment(hub_api)
    labs.flask(env, "db", "upgrade")
    labs.flask(env, "lms", "demo")
    labs.flask(env, "lms", "release", "--course", labs.COURSE)
    hub = labs.Hub(hub_api)
    baseline, cold, warm, submit, weights = [], [], [], [], []
    with labs.site(env, port, hub_api) as base, worker(env), sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for run in range(args.runs):
            hub.stop_servers()
            hub.wait_warm()
            context, page = signed_in(browser, base)  # a new context: an empty cache
            baseline.append(to_assignment(page, base))
            received: list[int] = []

            def count(request: Request, into: list[int] = received) -> None:
                into.append(request.sizes()["responseBodySize"])

            page.on("requestfinished", count)
            cold.append(open_lab_to_output(page, base, 1000 + run))
            weights.append(sum(received))
            page.remove_listener("requestfinished", count)
            # Warm: the learner comes back to the lab a little later: the server runs, the
            # browser has its files, the notebook's kernel is still theirs.
            warm.append(open_lab_to_output(page, base, 2000 + run))
            submit.append(submit_to_feedback(page))
            context.close()
        browser.close()
    base_s = statistics.median(baseline)
    print(f"runs: {args.runs}")
    print(f"assignment_page_click_seconds: {base_s:.3f}")
    print(f"open_lab_to_output_cold_seconds: {statistics.median(cold):.3f}")
    print(f"open_lab_to_output_warm_seconds: {statistics.median(warm):.3f}")
    print(f"submit_to_feedback_seconds: {statistics.median(submit):.3f}")
    print(f"lab_page_weight_cold_cache_mb: {statistics.median(weights) / 1e6:.2f}")
    print(f"cold_over_page_click_ratio: {statistics.median(cold) / base_s:.1f}")
    print(f"warm_over_page_click_ratio: {statistics.median(warm) / base_s:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
