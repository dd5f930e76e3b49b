"""Static checks of the deployment files under docker/ and .github/.

They parse the files only: no Docker, cluster, systemd or database is needed, so a broken
manifest is caught by the ordinary test run rather than by a failed deploy.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
K8S_DIR = DOCKER / "k8s"
SYSTEMD_DIR = DOCKER / "systemd"
WORKFLOW_FILE = ROOT / ".github" / "workflows" / "ci.yml"

APP_SERVICES = ("migrate", "web", "worker", "beat")
SYSTEMD_UNITS = ("healthorch-web", "healthorch-worker", "healthorch-beat")


# --- loaders -------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    # safe_load resolves the `<<: *app` merge keys, so each service appears fully expanded.
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def load_k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.name, document))
    return documents


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    return {
        document["metadata"]["name"]: document
        for _, document in load_k8s_documents()
        if document.get("kind") == kind
    }


def deployment(component: str) -> dict[str, Any]:
    deployments = k8s_objects("Deployment")
    name = f"healthorch-{component}"
    assert name in deployments, (
        f"docker/k8s: no Deployment named {name} (found {sorted(deployments)})"
    )
    return deployments[name]


def container(component: str) -> dict[str, Any]:
    containers = deployment(component)["spec"]["template"]["spec"]["containers"]
    by_name = {c["name"]: c for c in containers}
    assert component in by_name, (
        f"docker/k8s: Deployment healthorch-{component} has no container {component!r}"
    )
    return by_name[component]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def load_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values]}}; keys may repeat, so values are lists."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in (SYSTEMD_DIR / f"{name}.service").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, (
            f"docker/systemd/{name}.service: {line!r} comes before any section"
        )
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def load_workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW_FILE.read_text())


# --- docker compose ------------------------------------------------------------------------


def test_compose_defines_the_database_broker_and_every_application_role():
    services = compose_services()
    for name in ("db", "redis", *APP_SERVICES):
        assert name in services, f"docker/compose.yml: service {name!r} is missing"


def test_every_compose_service_has_a_build_or_an_image():
    for name, service in compose_services().items():
        assert "build" in service or "image" in service, (
            f"docker/compose.yml: service {name!r} has neither build nor image"
        )


def test_every_compose_service_has_a_healthcheck():
    for name, service in compose_services().items():
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"docker/compose.yml: service {name!r} has no healthcheck"
        assert not healthcheck.get("disable"), (
            f"docker/compose.yml: service {name!r} disables its healthcheck"
        )
        assert healthcheck.get("test"), (
            f"docker/compose.yml: service {name!r} has a healthcheck without a test"
        )


def test_every_compose_service_has_an_environment():
    for name, service in compose_services().items():
        assert service.get("environment") or service.get("env_file"), (
            f"docker/compose.yml: service {name!r} has neither environment nor env_file"
        )


def test_application_services_share_one_build_and_configuration():
    compose = load_compose()
    shared = compose.get("x-app")
    assert shared, "docker/compose.yml: the shared x-app definition is missing"
    assert "build" in shared, "docker/compose.yml: the shared x-app definition has no build"
    services = compose["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service.get("build") == shared["build"], (
            f"docker/compose.yml: service {name!r} does not use the x-app build"
        )
        assert service.get("env_file") == shared["env_file"], (
            f"docker/compose.yml: service {name!r} does not use the x-app env_file"
        )
        for variable in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"):
            assert variable in service.get("environment", {}), (
                f"docker/compose.yml: service {name!r} does not set {variable}"
            )


def test_each_application_service_runs_its_own_role():
    services = compose_services()
    for name in APP_SERVICES:
        command = services[name].get("command")
        words = shlex.split(command) if isinstance(command, str) else command
        assert words == [name], (
            f"docker/compose.yml: service {name!r} runs {command!r}, expected {name!r}"
        )


def test_web_healthcheck_asks_whether_the_app_is_ready():
    test = compose_services()["web"]["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    assert "/ready" in text, f"docker/compose.yml: web healthcheck does not hit /ready: {text!r}"


def test_application_services_wait_for_migrations_to_finish():
    services = compose_services()
    for name in ("web", "worker", "beat"):
        depends_on = services[name].get("depends_on", {})
        condition = depends_on.get("migrate", {}).get("condition")
        assert condition == "service_completed_successfully", (
            f"docker/compose.yml: service {name!r} does not wait for migrate to complete (condition={condition!r})"
        )


# --- Kubernetes ----------------------------------------------------------------------------


def test_every_k8s_document_has_a_kind_and_a_name():
    documents = load_k8s_documents()
    assert documents, "docker/k8s: no YAML documents found"
    for filename, document in documents:
        assert document.get("kind"), f"docker/k8s/{filename}: a document has no kind"
        assert document.get("metadata", {}).get("name"), (
            f"docker/k8s/{filename}: a {document.get('kind')} has no name"
        )


@pytest.mark.parametrize("component", ["web", "worker", "beat"])
def test_k8s_has_a_deployment_for_each_long_running_role(component):
    container_spec = container(component)
    assert container_spec.get("args") == [component], (
        f"docker/k8s: Deployment healthorch-{component} runs {container_spec.get('args')!r}, expected [{component!r}]"
    )


def test_k8s_web_probes_liveness_on_live_and_readiness_on_ready():
    web = container("web")
    liveness = web.get("livenessProbe", {}).get("httpGet", {}).get("path")
    readiness = web.get("readinessProbe", {}).get("httpGet", {}).get("path")
    assert liveness == "/live", (
        f"docker/k8s: web livenessProbe path is {liveness!r}, expected '/live'"
    )
    assert readiness == "/ready", (
        f"docker/k8s: web readinessProbe path is {readiness!r}, expected '/ready'"
    )


def test_k8s_worker_has_a_liveness_probe():
    assert "livenessProbe" in container("worker"), (
        "docker/k8s: worker container has no livenessProbe"
    )


def test_k8s_runs_exactly_one_beat_and_never_two_during_a_rollout():
    beat = deployment("beat")
    replicas = beat["spec"].get("replicas")
    strategy = beat["spec"].get("strategy", {}).get("type")
    assert replicas == 1, f"docker/k8s: beat Deployment has replicas={replicas!r}, expected 1"
    assert strategy == "Recreate", (
        f"docker/k8s: beat Deployment strategy is {strategy!r}, expected 'Recreate'"
    )


@pytest.mark.parametrize("kind", ["Service", "ConfigMap", "Secret", "Job"])
def test_k8s_defines_the_supporting_objects(kind):
    assert k8s_objects(kind), f"docker/k8s: no {kind} found in any *.yaml file"


def test_k8s_pods_refuse_to_run_as_root():
    for filename, document in load_k8s_documents():
        if document["kind"] not in ("Deployment", "Job"):
            continue
        name = document["metadata"]["name"]
        pod_security = document["spec"]["template"]["spec"].get("securityContext", {})
        assert pod_security.get("runAsNonRoot") is True, (
            f"docker/k8s/{filename}: {name} does not set runAsNonRoot"
        )


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_runs_as_a_non_root_user():
    users = [
        arguments
        for keyword, arguments in final_stage(dockerfile_instructions())
        if keyword == "USER"
    ]
    assert users, "docker/Dockerfile: the runtime stage sets no USER, so the container runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"docker/Dockerfile: the runtime stage runs as {users[-1]!r}"


def test_dockerfile_starts_through_the_entrypoint_script():
    startup = [
        arguments
        for keyword, arguments in final_stage(dockerfile_instructions())
        if keyword in ("CMD", "ENTRYPOINT")
    ]
    assert any("entrypoint.sh" in arguments for arguments in startup), (
        f"docker/Dockerfile: neither CMD nor ENTRYPOINT refers to entrypoint.sh ({startup!r})"
    )


def test_entrypoint_script_is_executable():
    entrypoint = DOCKER / "entrypoint.sh"
    assert entrypoint.exists(), "docker/entrypoint.sh is missing"
    assert entrypoint.stat().st_mode & 0o111, "docker/entrypoint.sh is not executable"


# --- systemd -------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", SYSTEMD_UNITS)
def test_each_systemd_unit_starts_as_the_service_user_and_restarts_on_failure(unit):
    service = load_unit(unit).get("Service", {})
    where = f"docker/systemd/{unit}.service"
    assert service.get("ExecStart"), f"{where}: no ExecStart"
    assert service.get("User") == ["healthorch"], (
        f"{where}: User is {service.get('User')!r}, expected healthorch"
    )
    assert service.get("Restart"), f"{where}: no Restart"


# --- GitHub Actions ------------------------------------------------------------------------


CI_SCRIPT = ROOT / ".ci" / "run"


def test_the_workflow_runs_the_ci_script_and_sets_nothing_of_its_own():
    """One CI configuration: GitHub runs `.ci/run` as CI does, with no variables beside it."""
    workflow = load_workflow()
    runs = [
        (name, step.get("run") or "")
        for name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
    ]
    assert any(".ci/run" in command for _, command in runs), (
        ".github/workflows/ci.yml: no step runs .ci/run"
    )
    assert not any("make test" in command for _, command in runs), (
        ".github/workflows/ci.yml: runs `make test` itself instead of through .ci/run"
    )
    assert "env" not in workflow, ".github/workflows/ci.yml sets variables .ci/run does not"
    for name, job in workflow["jobs"].items():
        assert not job.get("env"), f".github/workflows/ci.yml: job {name!r} sets variables"


def test_the_ci_script_runs_make_test_on_postgres_with_a_redis_broker_and_cache():
    exported = dict(re.findall(r'^export (\w+)="([^"]*)"', CI_SCRIPT.read_text(), re.MULTILINE))
    assert exported.get("DATABASE_URL", "").startswith("postgres://"), exported
    assert exported.get("CELERY_BROKER_URL", "").startswith("redis://"), exported
    assert exported.get("CACHE_URL", "").startswith("redis://"), exported
    assert exported["CELERY_BROKER_URL"] != exported["CACHE_URL"], "broker and cache share a db"
    assert re.search(r"^make test\b", CI_SCRIPT.read_text(), re.MULTILINE)


# --- access logs -----------------------------------------------------------------------------


def test_every_gunicorn_start_redacts_secrets_in_its_access_log():
    """The entrypoint and the systemd unit start gunicorn with the redacting logger class."""
    starts = {
        "docker/entrypoint.sh": (DOCKER / "entrypoint.sh").read_text(),
        "docker/systemd/healthorch-web.service": (
            DOCKER / "systemd" / "healthorch-web.service"
        ).read_text(),
    }
    for where, text in starts.items():
        assert "--access-logfile" in text, where
        assert "--logger-class healthorch.accesslog.RedactingLogger" in text, where
