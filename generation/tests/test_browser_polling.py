"""Progress polling in the real browser (static/js/poll.js): a job page polls its status
with backoff (doubling to a cap, back to the start when something changed), stops once
the job has ended, keeps trying after failed requests (saying so) and waits out a 429's
Retry-After, rests while the tab is hidden; the job list refreshes its rows while a job
is active.

The timings are shortened for the test (window.imagineerPoll: 200 ms doubling to 1.6 s);
an init script records each wait poll.js chose (the data-poll-wait it sets), so the
backoff is read exactly, and the requests' own times show that it did wait.
"""

import time

import pytest

from generation.models import Job, ModelVersion, Status

# Backend-neutral (conftest.py): a browser walk of poll.js; the job views it polls have their
# own tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]

FIRST, MAX = 200, 1600
RECORD_WAITS = f"window.imagineerPoll = {{first: {FIRST}, max: {MAX}}};" + """
window.pollWaits = [];
new MutationObserver(function (changes) {
  changes.forEach(function (change) {
    window.pollWaits.push(Number(change.target.dataset.pollWait));
  });
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-poll-wait"]});
"""


@pytest.fixture
def job(viewer):
    base = ModelVersion.objects.create(name="demo", kind="base", source="example/demo",
                                       is_default=True)
    return Job.objects.create(owner=viewer, prompt="a lighthouse", model=base, width=64,
                              height=64, steps=4, guidance_scale=7.0, seed=1,
                              scheduler="pndm")


def watch(page, path):
    """The times (monotonic seconds) of the page's requests to `path`."""
    times = []
    page.on("request", lambda request: times.append(time.monotonic())
            if request.url.endswith(path) else None)
    return times


def waits(page):
    return page.evaluate("window.pollWaits")


def wait_for_waits(page, check, timeout=30):
    """Wait until check(the waits poll.js chose) holds (page.wait_for_function would
    evaluate a string, which the pages' Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not check(waits(page)):
        assert time.monotonic() < deadline, waits(page)
        page.wait_for_timeout(20)


def wait_for_requests(page, times, count, timeout=30):
    """Wait, letting Playwright deliver its events (a plain sleep would hold them)."""
    deadline = time.monotonic() + timeout
    while len(times) < count:
        assert time.monotonic() < deadline, f"{len(times)} requests, expected {count}"
        page.wait_for_timeout(20)


def test_the_job_page_polls_slower_then_faster_on_change_and_stops_at_the_end(
        sign_in_page, live_server, viewer, job):
    page = sign_in_page(viewer)
    page.add_init_script(RECORD_WAITS)
    status = f"/jobs/{job.pk}/status/"
    times = watch(page, status)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")

    # Nothing changes while the job waits in the queue: each wait doubles, up to the cap.
    wait_for_requests(page, times, 5)
    assert waits(page)[:5] == [200, 400, 800, 1600, 1600]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    for gap, wait in zip(gaps, [400, 800, 1600, 1600], strict=False):
        assert gap >= wait / 1000 * 0.95, (gaps, "it polled before its wait was over")

    # Progress: the next answer differs, and the wait starts again from the first.
    Job.objects.filter(pk=job.pk).update(status=Status.RUNNING, progress=0.5)
    page.locator(".job-status .status", has_text="running").wait_for()
    wait_for_waits(page, lambda chosen: chosen[-1] == FIRST)

    # The job ends: the fragment without data-poll replaces it and polling stops.
    Job.objects.filter(pk=job.pk).update(status=Status.FAILED, error="the GPU caught fire",
                                         progress=0.5)
    page.locator(".job-status .status", has_text="failed").wait_for()
    assert page.locator(".job-status").get_attribute("data-poll") is None
    count = len(times)
    page.wait_for_timeout(2 * MAX + 500)
    assert len(times) == count, "it polled after the job had ended"
    assert "the GPU caught fire" in page.locator(".job-status").inner_text()


def test_it_keeps_trying_after_errors_and_waits_out_retry_after(sign_in_page, live_server,
                                                                viewer, job):
    page = sign_in_page(viewer)
    page.add_init_script(RECORD_WAITS)
    status = f"/jobs/{job.pk}/status/"
    calls = []

    def outside(route):
        # What lies between the browser and the site: the network drops the first
        # request, a proxy answers the second with 429 and Retry-After, then all is well.
        calls.append(time.monotonic())
        if len(calls) == 1:
            route.abort()
        elif len(calls) == 2:
            route.fulfill(status=429, headers={"Retry-After": "1"}, body="slow down")
        else:
            route.continue_()

    page.route(f"**{status}", outside)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    note = page.locator(".poll-note")
    note.wait_for()
    assert note.inner_text() == "Reconnecting…"
    wait_for_requests(page, calls, 3)
    assert calls[2] - calls[1] >= 0.95, "it did not wait out Retry-After"
    note.wait_for(state="detached")
    # 200 first; 400 after the network error; 1000 (Retry-After over the 800 of the
    # backoff) after the 429; then the answer came, unchanged: 1600.
    wait_for_waits(page, lambda chosen: len(chosen) >= 4)
    assert waits(page)[:4] == [200, 400, 1000, 1600]
    assert page.locator(".job-status .status").inner_text() == "queued"


def test_it_rests_while_the_tab_is_hidden(sign_in_page, live_server, viewer, job):
    page = sign_in_page(viewer)
    # The tab's visibility as the test says (headless chromium is never hidden).
    page.add_init_script(RECORD_WAITS + """
window.tabHidden = false;
Object.defineProperty(document, "hidden", {get: function () { return window.tabHidden; }});
""")
    times = watch(page, f"/jobs/{job.pk}/status/")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    wait_for_requests(page, times, 2)
    page.evaluate("window.tabHidden = true; document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_timeout(200)
    count = len(times)
    page.wait_for_timeout(2 * MAX + 500)
    assert len(times) == count, "it polled in a hidden tab"
    page.evaluate("window.tabHidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    wait_for_requests(page, times, count + 1, timeout=5)


def test_the_job_list_refreshes_when_a_job_finishes(sign_in_page, live_server, viewer, job):
    page = sign_in_page(viewer)
    page.add_init_script(RECORD_WAITS)
    times = watch(page, "/jobs/")
    page.goto(f"{live_server.url}/jobs/")
    row = page.locator(f"#job-rows tr:has(a[href='/jobs/{job.pk}/'])")
    assert "queued" in row.inner_text()
    assert row.locator("button.danger").count() == 1  # Cancel
    wait_for_requests(page, times, 2)  # the page, then a refresh of its rows

    Job.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED, progress=1.0)
    page.locator("#job-rows tr.status-succeeded").wait_for()
    assert row.locator("button.danger").count() == 0, "a finished job offers no cancel"
    assert page.locator("#job-rows").get_attribute("data-poll") is None
    count = len(times)
    page.wait_for_timeout(2 * MAX + 500)
    assert len(times) == count, "the list polled with no job active"
