"""Status pages in headless Chromium against the live server: the page with its sections and
bars, a private page behind its password, and the email subscription round trip through a
real SMTP server (aiosmtpd) - subscribe, confirm by the emailed link, unsubscribe by the link
in an update email. Celery runs eagerly here (the real task code, in the server's thread)."""

from __future__ import annotations

import email
import re

import pytest

from apps.monitors.models import Monitor
from apps.statuspages import services
from apps.statuspages.models import Subscriber
from tests.factories import make_monitor
from tests.statuspages.conftest import daily, make_incident, make_page, make_section
from tests.support import serve_smtp, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager():
    from healthorch.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_page_renders_sections_with_uptime_bars(page, live_server, pro):
    api, web = make_monitor(pro, "api"), make_monitor(pro, "web")
    Monitor.objects.filter(pk__in=[api.pk, web.pk]).update(status="up")
    daily(api, 1, up=1000, down=50)
    status_page = make_page(pro, name="Acme Cloud")
    make_section(status_page, "Backend", [api], position=1)
    make_section(status_page, "Frontend", [web], position=2)
    page.goto(f"{live_server.url}/status/acme/")
    assert page.locator("h1").inner_text() == "Acme Cloud"
    assert page.locator("#overall").inner_text().startswith("All systems operational")
    assert page.locator("section.group h2").all_inner_texts() == ["Backend", "Frontend"]
    bars = page.locator("section.group svg.bars")
    assert bars.count() == 2
    assert bars.first.locator("rect").count() == 90
    assert page.locator("rect.bar-down").count() == 1  # yesterday: 50 of 1,050 failed
    box = bars.first.bounding_box()
    assert box["width"] > 600  # the bars span the column
    # The stylesheet loaded: a day with no data is grey, not the SVG default black.
    fill = page.locator("rect.bar-nodata").first.evaluate("e => getComputedStyle(e).fill")
    assert fill != "rgb(0, 0, 0)"
    # Narrow screens keep every bar visible inside the viewport.
    page.set_viewport_size({"width": 375, "height": 800})
    assert bars.first.bounding_box()["width"] <= 375


def test_a_private_page_refuses_without_the_password_and_shows_with_it(page, live_server, pro):
    status_page = make_page(pro, slug="internal", private=True, password="s3cret-pass")
    make_section(status_page, "Databases", [make_monitor(pro, "db")])
    page.goto(f"{live_server.url}/status/internal/")
    assert "This status page is private" in page.content()
    assert page.locator("section.group").count() == 0
    page.fill("#page-password", "not-it")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "That password is not right."
    assert page.locator("section.group").count() == 0
    page.fill("#page-password", "s3cret-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/status/internal/")
    assert page.locator("section.group h2").inner_text() == "Databases"
    # The cookie keeps the visitor in on the next visit.
    page.goto(f"{live_server.url}/status/internal/")
    assert page.locator("section.group h2").inner_text() == "Databases"


def _body(envelope) -> str:
    return email.message_from_bytes(envelope.content).get_payload(decode=True).decode()


def test_a_visitor_subscribes_confirms_and_unsubscribes_by_email(
    page, live_server, pro, settings, eager, member
):
    settings.HEALTHORCH_PUBLIC_URL = live_server.url
    # With max-age > 0 Chromium itself would show its cached copy on the second visit, as it
    # should; this test wants the fresh page after the update.
    settings.STATUS_PAGE_CACHE_SECONDS = 0
    monitor = make_monitor(pro, "api")
    make_section(make_page(pro), "Core", [monitor])
    with serve_smtp(settings) as mailbox:
        page.goto(f"{live_server.url}/status/acme/")
        page.fill("#sub-email", "visitor@example.test")
        page.click("#subscribe button[type=submit]")
        assert page.locator("#message h2").inner_text() == "Check your inbox"
        wait_for(lambda: len(mailbox.envelopes) == 1, 10, "the confirmation email")
        assert mailbox.envelopes[0].rcpt_tos == ["visitor@example.test"]
        confirm = re.search(r"(http://\S+/confirm/\S+)", _body(mailbox.envelopes[0])).group(1)

        page.goto(confirm)
        page.click("#action button[type=submit]")
        assert page.locator("#message h2").inner_text() == "Subscribed"
        assert Subscriber.objects.get().active

        incident = make_incident(monitor, title="API errors")
        services.incident_update_post(
            incident=incident, status="investigating", message="Looking into it.", user=member
        )
        wait_for(lambda: len(mailbox.envelopes) == 2, 10, "the update email")
        body = _body(mailbox.envelopes[1])
        assert "Looking into it." in body
        unsubscribe = re.search(r"(http://\S+/unsubscribe/\S+)", body).group(1)

        page.goto(f"{live_server.url}/status/acme/")
        assert "Looking into it." in page.locator("#active-incidents").inner_text()

        page.goto(unsubscribe)
        page.click("#action button[type=submit]")
        assert page.locator("#message h2").inner_text() == "Unsubscribed"
        assert not Subscriber.objects.get().active
