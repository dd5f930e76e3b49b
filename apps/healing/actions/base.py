"""The healing action contract. Adding `kubernetes_rollout` or `ssh_command` is one module:

    @register
    class KubernetesRollout(Action):
        kind = "kubernetes_rollout"
        config_serializer = KubernetesConfig       # DRF serializer: validates the config
        secret_fields = ("token",)                 # stored encrypted, never shown again

        def run(self, request: ActionRequest) -> dict:
            ...call the API with self.config, within self.timeout...
            return {"rollout": name}               # recorded as the attempt's outcome
            # or: raise ActionError("API answered 403")  -> the attempt is failed

Actions know nothing of models: they get an `ActionRequest` (plain facts about the incident)
and the validated config, return details to record, or raise `ActionError`. Whether the
service recovered is not theirs to say: the engine re-checks the monitor afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests
from rest_framework import serializers

from apps.core import outbound, ssrf
from apps.core.plugins import ConfiguredPlugin, Registry

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class ActionRequest:
    attempt_id: str
    organization: str  # slug
    reason: str  # the engine's explanation
    incident: dict[str, Any] = field(default_factory=dict)
    monitor: dict[str, Any] = field(default_factory=dict)
    condition: str = ""


class ActionError(Exception):
    """The action could not be carried out (unreachable, refused, timed out)."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class Action(ConfiguredPlugin):
    noun = "action"
    # False for actions that only record the decision (a dry run).
    acts: ClassVar[bool] = True

    @classmethod
    def failure(cls, message: str) -> ActionError:
        return ActionError(message)

    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)

    def run(self, request: ActionRequest) -> dict[str, Any]:
        raise NotImplementedError


REGISTRY: Registry[Action] = Registry(Action, "healing action")
register = REGISTRY.register
action_for = REGISTRY.create  # (kind, stored config) -> Action, or ActionError


# --- shared config pieces ---------------------------------------------------------------------


def send(
    method: str,
    url: str,
    *,
    label: str,
    timeout: float,
    expected: list[int] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One outbound call for every HTTP-speaking action, through the outbound guard
    (`apps.core.outbound`): the name resolved once at call time, internal addresses refused
    unless private targets are allowed, the connection pinned to the vetted address; no
    redirects (a 3xx is an unexpected status unless listed in `expected`: an action that
    answers "go elsewhere" did not act); the body never read (a hostile endpoint cannot
    stream us gigabytes); and one mapping of refusals, timeouts, connection errors and
    unexpected statuses to `ActionError`s whose message starts with `label`. Success
    (`expected`, else any 2xx) returns the outcome."""
    try:
        response = outbound.request(
            method,
            url,
            guard=outbound.Guard.for_tenant(),
            timeout=timeout,
            user_agent="healthorch-healing/1",
            **kwargs,
        )
    except ssrf.BlockedTarget as exc:
        raise ActionError(f"action target blocked: {exc}") from exc
    except ssrf.ResolutionFailed as exc:
        raise ActionError(str(exc)) from exc
    except requests.Timeout as exc:
        raise ActionError(f"{label} timed out after {timeout:g}s") from exc
    except requests.RequestException as exc:
        raise ActionError(f"{label} connection failed: {type(exc).__name__}") from exc
    with response:
        status = response.status_code
    ok = status in expected if expected else 200 <= status < 300
    if not ok:
        raise ActionError(f"{label} answered {status}", details={"status_code": status})
    return {"status_code": status}


class TimeoutField(serializers.FloatField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            required=False,
            min_value=0.5,
            max_value=MAX_TIMEOUT_SECONDS,
            default=DEFAULT_TIMEOUT_SECONDS,
            **kwargs,
        )
