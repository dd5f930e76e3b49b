"""Every documented deployment makes web, worker and beat serve their metrics, and scrapes
them under the job names the alerting rules use. Static reads of the files under docker/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
ROLES = ("web", "worker", "beat")
JOBS = {f"healthorch-{role}" for role in ROLES}


def _rule_jobs() -> set[str]:
    text = (DOCKER / "observability" / "alerts.yml").read_text()
    return set(re.findall(r'job="([^"]+)"', text))


def test_the_rules_name_only_the_documented_jobs():
    assert _rule_jobs() <= JOBS
    assert _rule_jobs() >= {"healthorch-worker", "healthorch-beat"}


def test_compose_gives_every_role_a_metrics_port_and_scrapes_it():
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text())
    ports = {role: compose["services"][role]["environment"].get("METRICS_PORT") for role in ROLES}
    assert set(ports.values()) == {"9540"}, ports
    prometheus = compose["services"]["prometheus"]
    mounted = " ".join(prometheus["volumes"])
    assert "observability/prometheus.yml" in mounted
    assert "observability/alerts.yml" in mounted

    config = yaml.safe_load((DOCKER / "observability" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == JOBS
    for role in ROLES:
        text = yaml.safe_dump(jobs[f"healthorch-{role}"])
        assert role in text
        assert "9540" in text
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_the_entrypoint_serves_the_web_metrics_through_the_gunicorn_hooks():
    entrypoint = (DOCKER / "entrypoint.sh").read_text()
    assert '--config "$(dirname "$0")/gunicorn.conf.py"' in entrypoint
    assert (DOCKER / "gunicorn.conf.py").exists()


def _k8s(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DOCKER / "k8s" / name).read_text()) if d]


@pytest.mark.parametrize("role", ROLES)
def test_each_k8s_pod_exposes_and_announces_its_metrics_port(role):
    configmap = _k8s("configmap.yaml")[0]
    port = int(configmap["data"]["METRICS_PORT"])
    deployment = next(d for d in _k8s(f"{role}.yaml") if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert ports.get("metrics") == port


def test_the_pod_monitor_scrapes_the_metrics_port_under_the_rules_job_names():
    (monitor,) = _k8s("podmonitor.yaml")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics"
    relabel = endpoint["relabelings"][0]
    assert relabel["targetLabel"] == "job"
    assert relabel["replacement"] == "healthorch-$1"
    for role in ROLES:
        deployment = next(d for d in _k8s(f"{role}.yaml") if d["kind"] == "Deployment")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == role
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _unit_env(role: str) -> dict[str, str]:
    text = (DOCKER / "systemd" / f"healthorch-{role}.service").read_text()
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("Environment="):
            for pair in line.removeprefix("Environment=").split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_systemd_units_serve_metrics_on_ports_that_do_not_collide():
    ports = [_unit_env(role).get("METRICS_PORT") for role in ROLES]
    assert all(ports), ports
    assert len(set(ports)) == len(ROLES), ports
    web = (DOCKER / "systemd" / "healthorch-web.service").read_text()
    assert "--config /opt/healthorch/docker/gunicorn.conf.py" in web
    for role in ROLES:
        text = (DOCKER / "systemd" / f"healthorch-{role}.service").read_text()
        # After the env file, so a METRICS_PORT there cannot give two units the same port.
        assert text.index("EnvironmentFile=") < text.index("Environment=METRICS_PORT=")
