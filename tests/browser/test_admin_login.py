"""The console's front door in a real browser: an operator gets in, a wrong password does not."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_logs_in_and_reaches_the_console(page, live_server, admin_login):
    operator = UserFactory(is_staff=True, is_superuser=True)
    admin_login(page, operator)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#site-name").is_visible()
    assert page.locator("#logout-form").count() == 1


def test_a_wrong_password_is_refused_with_a_message(page, live_server):
    operator = UserFactory(is_staff=True, is_superuser=True)
    operator.set_password("right-one")
    operator.save(update_fields=["password"])
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=login]", operator.email)
    page.fill("input[name=password]", "wrong-one")
    page.click("form button[type=submit]")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    assert "not correct" in page.locator("form").inner_text()
