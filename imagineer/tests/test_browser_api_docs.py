"""Swagger UI at /api/docs/ in a real browser, under the site's Content-Security-Policy."""

import pytest

# Backend-neutral (conftest.py): Swagger UI in a browser.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]

# Records every CSP violation of the page; Playwright runs it before the page's scripts.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def test_it_renders_the_operations_without_breaking_the_csp(page, live_server):
    page.add_init_script(RECORD_VIOLATIONS)
    messages = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    outside = []
    page.on("request", lambda request: None if request.url.startswith(live_server.url)
            else outside.append(request.url))

    response = page.goto(f"{live_server.url}/api/docs/")
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock")

    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/jobs/" in paths and "/api/training-runs/{id}/cancel/" in paths
    assert page.locator(".info .title").inner_text().startswith("Imagineer API")
    # An operation opens with its description and example response.
    page.locator("#operations-jobs-jobs_create").click()
    assert "Generate images" in page.locator("#operations-jobs-jobs_create").inner_text()
    page.wait_for_selector("#operations-jobs-jobs_create .responses-table")
    assert page.evaluate("window.cspViolations") == []
    assert not [m for m in messages if m.startswith(("error", "pageerror"))], messages
    assert outside == []  # Swagger UI's files come from the site itself (the sidecar)
