"""The phone simulator in a real Chromium against the real ASGI app served by uvicorn."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openline.messaging.models import Conversation, InboundEvent
from openline.messaging.services.outbound import message_send

CHROMIUM = (
    os.environ.get("OPENLINE_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (install Debian's chromium or set OPENLINE_CHROMIUM)",
)


@pytest.fixture
def live_asgi(transactional_db: None) -> Iterator[str]:
    """openline.asgi.application (intake router + Django) on a free local port."""
    import uvicorn

    from openline.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def page(live_asgi: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would then refuse
    # the test's own (synchronous, same-thread) ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 390, "height": 844})
        yield context.new_page()
        context.close()
        browser.close()


def _wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_volunteer_texts_from_the_simulator_and_sees_the_counselors_reply(
    page: Any, live_asgi: str, org: Any, sandbox_number: Any, pipeline: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}?phone=%2B12025550133")
    expect(page.locator("#my-phone")).to_have_value("+12025550133")
    page.fill("#body", "Is anyone there tonight?")
    page.click("#send")
    sent = page.locator(".bubble.sent")
    expect(sent).to_have_text("Is anyone there tonight?")
    expect(page.locator("#body")).to_have_value("")

    event = _wait_for(lambda: InboundEvent.objects.first())
    assert (event.from_number, event.body) == ("+12025550133", "Is anyone there tonight?")
    assert len(event.provider_message_id) == 36  # a UUID from the page

    pipeline.run()
    conversation = Conversation.objects.get(number=sandbox_number)
    pipeline.run(
        lambda: message_send(
            organization_id=org.pk, conversation=conversation, body="Yes. I'm Sam, a volunteer."
        )
    )
    received = page.locator(".bubble.received")
    expect(received).to_have_text("Yes. I'm Sam, a volunteer.", timeout=5000)
    expect(page.locator(".meta.received-meta")).to_contain_text("delivered")
    expect(page.locator(".meta.sent-meta")).to_contain_text("delivered")


def test_simulator_shows_why_intake_refused_a_text(
    page: Any, live_asgi: str, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}")
    page.fill("#body", "x" * 1601)
    expect(page.locator("#counter")).to_have_text("1601 / 1600")
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Not sent (413)")
    expect(page.locator("#error")).to_contain_text("the limit is 1600")

    page.fill("#my-phone", "555")
    page.fill("#body", "hello")
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Not sent (400): invalid From number")
    assert not InboundEvent.objects.exists()
