"""Stored secrets name their key, and a missing key is named wherever a secret is needed.

A database restored without its encryption keys, or a key dropped from the ring too early,
must not turn into 500s, crashed batches or "internal error": the API answers 503 in the one
error shape, the check engine records an inconclusive result and checks the rest of the batch,
delivery and healing record the fix on their rows, and `manage.py check_secrets` lists what
needs which key. No message ever carries a key or a secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import CommandError, call_command

from apps.alerts.models import Channel
from apps.alerts.services import channels as channel_services
from apps.alerts.services.delivery import deliver_test
from apps.core import crypto
from apps.healing import services as healing_services
from apps.monitors.engine import run_monitors
from apps.monitors.models import CheckResult
from tests.factories import make_monitor

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
CHANNELS = "/api/v1/channels/"
ROOT = Path(__file__).resolve().parents[2]


def _no_key_material(text: str) -> None:
    for value in (OLD, NEW, "s3cret-pass", "signing-secret-0123456789"):
        assert value not in text


def test_a_stored_secret_names_its_key_and_decrypts_after_a_rotation(settings):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    stored = crypto.encrypt("s3cret-pass")
    assert crypto.key_id_of(stored) == crypto.key_id(OLD)
    assert stored.startswith(f"hk1:k:{crypto.key_id(OLD)}:")
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW, OLD]
    assert crypto.decrypt(stored) == "s3cret-pass"
    assert crypto.key_id_of(crypto.encrypt("x")) == crypto.key_id(NEW)


def test_a_missing_key_is_named_by_its_id_and_setting_never_by_its_value(settings):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    stored = crypto.encrypt("s3cret-pass")
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(crypto.SecretUnavailable) as caught:
        crypto.decrypt(stored)
    error = caught.value
    assert isinstance(error, ValueError)  # callers that caught ValueError still do
    assert (error.code, error.key_id, error.setting) == (
        "encryption_key_missing",
        crypto.key_id(OLD),
        "HEALTHORCH_ENCRYPTION_KEYS",
    )
    assert f"key {crypto.key_id(OLD)}, which is not in HEALTHORCH_ENCRYPTION_KEYS" in error.detail
    assert f"configured: {crypto.key_id(NEW)} (HEALTHORCH_ENCRYPTION_KEYS[0])" in error.detail
    _no_key_material(error.detail + repr(crypto.keys()))


def test_a_key_derived_from_secret_key_is_named_as_such(settings):
    settings.HEALTHORCH_ENCRYPTION_KEYS = []
    stored = crypto.encrypt("s3cret-pass")
    assert stored.startswith("hk1:s:")
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(crypto.SecretUnavailable) as caught:
        crypto.decrypt(stored)
    assert caught.value.setting == "SECRET_KEY"
    assert "derived from SECRET_KEY" in caught.value.detail


def test_a_secret_written_before_key_ids_still_decrypts_and_names_the_setting_when_not(
    settings,
):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW, OLD]
    bare = Fernet(OLD.encode()).encrypt(b"s3cret-pass").decode()
    assert crypto.decrypt(bare) == "s3cret-pass"
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(crypto.SecretUnavailable) as caught:
        crypto.decrypt(bare)
    assert caught.value.key_id == ""
    assert "HEALTHORCH_ENCRYPTION_KEYS" in caught.value.detail


def test_a_damaged_secret_is_told_apart_from_a_missing_key(settings):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    stored = crypto.encrypt("s3cret-pass")
    damaged = stored[:-6] + ("AAAAAA" if not stored.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(crypto.SecretUnavailable) as caught:
        crypto.decrypt(damaged)
    assert caught.value.code == "secret_damaged"


def test_a_malformed_key_is_named_by_its_position_not_echoed(settings):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW, "not-a-key-but-maybe-a-password"]
    with pytest.raises(
        ValueError, match=r"HEALTHORCH_ENCRYPTION_KEYS\[1\] is not a Fernet key"
    ) as e:
        crypto.encrypt("x")
    assert "maybe-a-password" not in str(e.value)


def test_a_process_with_a_malformed_key_stops_at_start_naming_its_position():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "HEALTHORCH_ENCRYPTION_KEYS": f"{NEW},hunter2-typo"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "HEALTHORCH_ENCRYPTION_KEYS[1] is not a Fernet key" in done.stderr
    assert "hunter2" not in done.stderr


def test_every_field_named_secret_is_declared_encrypted():
    """A new secret column that `check_secrets` would not read fails here."""
    declared = {(model._meta.label, field) for model, field in crypto.ENCRYPTED_FIELDS}
    found = {
        (model._meta.label, field.name)
        for model in apps.get_models()
        if model.__module__.startswith("apps.")
        for field in model._meta.local_fields
        if field.name.endswith(("secret", "secret_encrypted"))
    }
    assert found == declared


# --- where a secret is needed ----------------------------------------------------------------


@pytest.fixture
def written_with_old_key(settings, pro):
    """A webhook channel and a postgres monitor (its password) stored under OLD, and the server
    then configured with NEW only, as after a restore that lost a key."""
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    channel, _ = channel_services.channel_create(
        org=pro,
        kind="webhook",
        name="hook",
        config={"url": "http://127.0.0.1:9/hook", "secret": "signing-secret-0123456789"},
    )
    # The API's serializer splits the DSN's password off into `secret`, as here.
    monitor = make_monitor(
        pro,
        "db",
        kind="postgres",
        config={"dsn": "postgres://app@127.0.0.1:9/app"},
        secret="s3cret-pass",
    )
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW]
    return channel, monitor


def test_the_api_answers_503_in_the_error_shape_naming_the_key(
    written_with_old_key, client_for, owner
):
    channel, _ = written_with_old_key
    response = client_for(owner).patch(
        f"{CHANNELS}{channel.pk}/", {"config": {"url": "http://127.0.0.1:9/new"}}, format="json"
    )
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail", "code"}
    assert body["error"] == "Secret unavailable"
    assert body["code"] == "encryption_key_missing"
    assert crypto.key_id(OLD) in body["detail"]
    assert "HEALTHORCH_ENCRYPTION_KEYS" in body["detail"]
    _no_key_material(response.content.decode())
    channel.refresh_from_db()
    assert channel.config["url"] == "http://127.0.0.1:9/hook"  # nothing half-written


def test_a_tenant_replaces_a_secret_whose_key_is_lost_by_giving_it_again(
    written_with_old_key, client_for, owner
):
    channel, _ = written_with_old_key
    new_config = {"url": "http://127.0.0.1:9/new", "secret": "another-signing-secret-0123"}
    response = client_for(owner).patch(
        f"{CHANNELS}{channel.pk}/", {"config": new_config}, format="json"
    )
    assert response.status_code == 200, response.json()
    channel.refresh_from_db()
    assert crypto.key_id_of(channel.secret) == crypto.key_id(NEW)
    assert channel_services.channel_secrets(channel) == {"secret": "another-signing-secret-0123"}


def test_a_healing_policy_secret_is_replaced_the_same_way(settings, pro):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    monitor = make_monitor(pro, "api")
    action = {"url": "http://127.0.0.1:9/restart", "secret": "x" * 20}
    data = {"name": "restart", "monitor": monitor, "action_kind": "webhook"}
    policy, _ = healing_services.policy_create(org=pro, data={**data, "action_config": action})
    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(crypto.SecretUnavailable):
        healing_services.policy_update(
            policy=policy, data={"action_config": {"url": "http://127.0.0.1:9/other"}}
        )
    healing_services.policy_update(
        policy=policy, data={"action_config": {**action, "secret": "y" * 20}}
    )
    assert healing_services.policy_secrets(policy) == {"secret": "y" * 20}


def test_delivery_records_the_missing_key_and_keeps_the_channel(written_with_old_key):
    channel, _ = written_with_old_key
    n = deliver_test(channel=channel)
    assert n.status == "dead"  # a test message is tried once
    attempt = n.attempt_rows.get()
    assert crypto.key_id(OLD) in attempt.error
    assert not attempt.permanent
    assert Channel.objects.get(pk=channel.pk).enabled  # the tenant did nothing wrong


def test_the_engine_checks_the_rest_of_the_batch_and_records_why_one_was_not(
    written_with_old_key, pro
):
    _, locked = written_with_old_key
    plain = make_monitor(pro, "tcp")
    run_monitors([str(locked.pk), str(plain.pk)])
    unreadable = CheckResult.objects.get(monitor=locked)
    assert unreadable.outcome == "inconclusive"
    assert crypto.key_id(OLD) in unreadable.error_message
    assert CheckResult.objects.get(monitor=plain).outcome == "down"  # its closed port, checked


def test_check_secrets_counts_per_field_and_names_the_missing_key(
    written_with_old_key, settings, capsys
):
    with pytest.raises(CommandError, match="2 of 2 stored secrets cannot be decrypted"):
        call_command("check_secrets")
    out, err = capsys.readouterr()
    assert "alerts.Channel.secret: 1 stored, 0 decrypt" in out
    assert "monitors.Monitor.secret: 1 stored, 0 decrypt" in out
    assert f"1 need key {crypto.key_id(OLD)}" in out
    assert f"{crypto.key_id(NEW)}  from HEALTHORCH_ENCRYPTION_KEYS[0]" in out
    assert "HEALTHORCH_ENCRYPTION_KEYS" in err
    _no_key_material(out + err)

    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW, OLD]
    call_command("check_secrets")
    out, _ = capsys.readouterr()
    assert "alerts.Channel.secret: 1 stored, 1 decrypt" in out
    assert "All 2 stored secrets decrypt." in out


def test_check_secrets_reports_secrets_written_before_key_ids(settings, pro, capsys):
    settings.HEALTHORCH_ENCRYPTION_KEYS = [OLD]
    channel, _ = channel_services.channel_create(
        org=pro,
        kind="webhook",
        name="hook",
        config={"url": "http://127.0.0.1:9/hook", "secret": "signing-secret-0123456789"},
    )
    bare = Fernet(OLD.encode()).encrypt(b'{"secret": "signing-secret-0123456789"}').decode()
    Channel.objects.filter(pk=channel.pk).update(secret=bare)  # as an older release stored it
    call_command("check_secrets")
    assert "1 stored, 1 decrypt (1 with no key id); 1 written before" in capsys.readouterr().out

    settings.HEALTHORCH_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("check_secrets")
    out, err = capsys.readouterr()
    assert f"1 predate key ids and open with no configured key: {channel.pk}" in out
    assert "written before secrets named their key" in err
