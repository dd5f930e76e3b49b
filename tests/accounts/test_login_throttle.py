"""Brute force on the sign-in form (the console's and the account pages' one door): the same
throttles as the API's login, answered with the form's own error, 429 and Retry-After; nothing
an attacker can use to keep the real user out for longer than the window, and an operator can
lift it sooner."""

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client

from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
WRONG = "The email address and/or password you specified are not correct."
THROTTLED = "Too many failed sign-in attempts."


def _sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"login": username, "password": password, "next": "/admin/"})


@pytest.fixture
def grace(org):
    user = MembershipFactory(organization=org, user=UserFactory(email="grace@example.test")).user
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def attacker():
    return Client(REMOTE_ADDR="192.0.2.66")


def _fail(client: Client, times: int, username: str = "grace@example.test") -> None:
    for n in range(times):
        response = _sign_in(client, username, "wrong")
        assert response.status_code == 200, n  # the form again, with its own message
        assert WRONG in response.content.decode()


def test_the_form_throttles_repeated_failures_with_its_own_error(grace, attacker, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    with time_machine.travel("2026-03-01T10:00:10Z", tick=False):
        _fail(attacker, 3)
        # Even the right password is refused now, before it is checked.
        throttled = _sign_in(attacker, "grace@example.test", PASSWORD)
    assert throttled.status_code == 429
    assert throttled["Content-Type"].startswith("text/html")
    assert int(throttled["Retry-After"]) == 290  # what is left of the 300 s window
    assert THROTTLED in throttled.content.decode()
    assert 'name="password"' in throttled.content.decode()  # the form, not an error page
    assert "_auth_user_id" not in attacker.session


def test_the_real_user_from_elsewhere_is_not_locked_out(grace, attacker, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    _fail(attacker, 3)
    assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 429
    response = _sign_in(Client(REMOTE_ADDR="198.51.100.7"), "grace@example.test", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_throttle_ends_with_its_window(grace, attacker, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    with time_machine.travel("2026-03-01T10:00:10Z", tick=False) as clock:
        _fail(attacker, 3)
        assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 429
        clock.shift(300)
        assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 302


def test_many_accounts_from_one_client_hit_the_client_bucket(org, attacker, settings):
    settings.LOGIN_FAILURES_PER_CLIENT = 4
    for n in range(4):
        _fail(attacker, 1, username=f"guess{n}@example.test")
    victim = MembershipFactory(organization=org).user
    response = _sign_in(attacker, victim.email, PASSWORD)
    assert response.status_code == 429
    assert THROTTLED in response.content.decode()


def test_api_and_console_failures_count_together(grace, attacker, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    api = "/api/v1/auth/login"
    for _ in range(2):
        wrong = {"email": "grace@example.test", "password": "wrong"}
        assert attacker.post(api, wrong, content_type="application/json").status_code == 401
    _fail(attacker, 1)
    assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 429


def test_a_successful_sign_in_resets_the_count(grace, attacker, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    _fail(attacker, 2)
    assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 302
    attacker.logout()
    _fail(attacker, 2)
    assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("args", "lifted"),
    [
        (["--email", "Grace@Example.test"], True),
        (["--client", "192.0.2.66"], False),  # the email bucket still holds
        (["--all"], True),
    ],
)
def test_an_operator_lifts_the_throttle(args, lifted, grace, attacker, settings, capsys):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    _fail(attacker, 3)
    call_command("clear_login_failures", *args)
    assert "cleared" in capsys.readouterr().out
    expected = 302 if lifted else 429
    assert _sign_in(attacker, "grace@example.test", PASSWORD).status_code == expected


def test_clearing_a_client_lifts_its_own_bucket(org, attacker, settings):
    settings.LOGIN_FAILURES_PER_CLIENT = 2
    for n in range(2):
        _fail(attacker, 1, username=f"guess{n}@example.test")
    victim = MembershipFactory(organization=org).user
    assert _sign_in(attacker, victim.email, PASSWORD).status_code == 429
    call_command("clear_login_failures", "--client", "192.0.2.66")
    assert _sign_in(attacker, victim.email, PASSWORD).status_code == 302


def test_the_command_needs_to_be_told_whom_to_clear():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--email, --client or --all"):
        call_command("clear_login_failures")
