"""deploy/: alert rules (promtool), dashboard metric names, compose and Kubernetes manifests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from consumers.console.metrics import ConsoleMetrics
from pipeline.metrics import Metrics
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"
WORKERS = {"processor", "exporter", "notifier", "projection", "catalog", "console"}


def exported_metric_names() -> set[str]:
    """Every series name the code can export (counter `_total`, histogram `_bucket`...)."""
    names = set()
    registry = Metrics().registry
    ConsoleMetrics(registry)
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def test_dashboard_references_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "erp-pipeline.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(?:erp_pipeline|process)_\w+", expr)}
    assert used, "the dashboard queries no metric"
    assert used <= exported_metric_names(), used - exported_metric_names()


def test_alert_rules_reference_only_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\berp_pipeline_\w+", expr)}
    assert used <= exported_metric_names(), used - exported_metric_names()
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "ErpConsumerLagHigh",
        "ErpFailedToExportGrowing",
        "ErpWorkerDown",
        "ErpCommitsStalled",
        "ErpConsoleServerErrors",
    } <= names


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (.ci/run installs it)"
)
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    rules_dir = DEPLOY / "prometheus"
    check = subprocess.run(
        ["promtool", "check", "rules", "alerts.yml"], cwd=rules_dir, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=rules_dir,
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_compose_runs_kafka_postgres_workers_prometheus_grafana() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert {"postgres", "prometheus", "grafana", "setup"} | WORKERS <= set(services)
    for worker in WORKERS:
        assert services[worker]["command"] == ["run", worker]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert {t.split(":")[0] for t in targets} == WORKERS
    # the console: its port published, its secret from the environment, no dev sign-in,
    # readiness on its own port (it has read erp.directory)
    console = services["console"]
    assert console["ports"] == ["8090:8090"]
    env = console["environment"]
    assert env["CONSOLE_PORT"] == "8090" and env["CONSOLE_HOST"] == "0.0.0.0"
    assert env["CONSOLE_SECRET"].startswith("${CONSOLE_SECRET:?")
    assert "CONSOLE_DEV_SIGNIN" not in env
    assert {"CONSOLE_USER_HEADER", "CONSOLE_COMPANY_HEADER", "CONSOLE_JWT_KEY"} <= set(env)
    assert "localhost:8090/readyz" in " ".join(console["healthcheck"]["test"])
    assert services["notifier"]["environment"]["CONSOLE_PUBLIC_URL"]


def test_compose_config_validates_where_docker_compose_exists() -> None:
    probe = (
        subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if shutil.which("docker")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("docker compose is not available here")
    result = subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_kubernetes_manifests_parse_with_the_expected_kinds() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "erp-pipeline.yaml").read_text()))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert ("ConfigMap", "erp-pipeline") in kinds and ("Secret", "erp-pipeline") in kinds
    assert ("Job", "erp-pipeline-setup") in kinds
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"erp-{w}" for w in WORKERS}
    for deployment in deployments.values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert services == {f"erp-{w}-metrics" for w in WORKERS} | {"erp-console"}
    console = deployments["erp-console"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in console["ports"]}
    assert ports == {"metrics": 9464, "http": 8090}
    assert console["readinessProbe"]["httpGet"]["port"] == "http"
    env = {e["name"]: e.get("value") for e in console["env"]}
    assert env["CONSOLE_PORT"] == "8090" and env["CONSOLE_HOST"] == "0.0.0.0"
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert "CONSOLE_SECRET" in secret and "CONSOLE_SECRET" not in config
    assert config["CONSOLE_PUBLIC_URL"] and "CONSOLE_DEV_SIGNIN" not in config
