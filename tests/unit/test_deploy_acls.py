"""deploy/: the Kafka ACL recipes (compose and k8s) grant exactly who may read and write where."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

import yaml

from consumers.export.worker import GROUP as EXPORTER_GROUP
from consumers.notify.worker import GROUP as NOTIFIER_GROUP
from consumers.readmodel.catalog import GROUP as CATALOG_GROUP
from consumers.readmodel.catalog import TOPICS as CATALOG_TOPICS
from consumers.readmodel.projection import GROUP as PROJECTION_GROUP
from pipeline.processor.config import APP_NAME, ITEM_TOPICS
from tests.support.paths import ROOT
from topics import ALL_TOPICS, TopicSpec
from topics.specs import (
    DEAD_LETTERS,
    DECISIONS,
    DIRECTORY,
    EXPORT_RESULTS,
    EXPORTS,
    FAILED_TO_EXPORT,
    ITEM_ROUTES,
    NOTIFICATIONS,
    STATUS,
    SUBMISSIONS,
)

DEPLOY = ROOT / "deploy"
#: (principal, resource type, pattern, name, operation)
Grant = tuple[str, str, str, str, str]

WORKERS = {"processor", "exporter", "projection", "notifier", "catalog", "console"}
UPSTREAM = {"pm-system", "approver-ui"}
GROUPS: dict[str, set[str]] = {
    "erp-processor": {APP_NAME},
    "erp-exporter": {EXPORTER_GROUP},
    "erp-projection": {PROJECTION_GROUP},
    "erp-notifier": {NOTIFIER_GROUP},
    # one group per topic the catalog reads
    "erp-catalog": {f"{CATALOG_GROUP}-{name}" for name in CATALOG_TOPICS},
    # the console reads erp.directory whole in every replica: no group
}
READS: dict[str, set[TopicSpec]] = {
    # its input topics, the directory, and the status / notifications the summary timer reads
    # and the repartition topic it re-routes records through (and reads back)
    "erp-processor": {*ITEM_TOPICS, DIRECTORY, STATUS, NOTIFICATIONS, ITEM_ROUTES},
    "erp-exporter": {EXPORTS},
    "erp-projection": {STATUS},
    "erp-notifier": {NOTIFICATIONS},
    "erp-catalog": set(CATALOG_TOPICS.values()),
    "erp-console": {DIRECTORY},
}
WRITES: dict[str, set[TopicSpec]] = {
    "erp-processor": {STATUS, EXPORTS, NOTIFICATIONS, DEAD_LETTERS, ITEM_ROUTES},
    "erp-exporter": {EXPORT_RESULTS, FAILED_TO_EXPORT, NOTIFICATIONS, DEAD_LETTERS},
    "erp-projection": {DEAD_LETTERS},
    "erp-notifier": {DEAD_LETTERS},
    "erp-catalog": {DEAD_LETTERS},
    "erp-console": {DECISIONS},
    "pm-system": {DIRECTORY, SUBMISSIONS},
    "approver-ui": {DECISIONS},
}


def expected() -> set[Grant]:
    grants: set[Grant] = set()
    for who, specs in READS.items():
        grants |= {
            (who, "topic", "literal", s.name, op) for s in specs for op in ("Read", "Describe")
        }
    for who, specs in WRITES.items():
        grants |= {
            (who, "topic", "literal", s.name, op) for s in specs for op in ("Write", "Describe")
        }
    for who, groups in GROUPS.items():
        grants |= {(who, "group", "literal", g, op) for g in groups for op in ("Read", "Describe")}
    internal = ("Read", "Write", "Describe", "Create", "DescribeConfigs")
    grants |= {("erp-processor", "topic", "prefixed", f"{APP_NAME}-", op) for op in internal}
    grants |= {("erp-auditor", "topic", "prefixed", "erp.", op) for op in ("Read", "Describe")}
    return grants


def compose_grants() -> set[Grant]:
    """The grants the compose `acls` service adds, one `acl ...` line at a time."""
    compose = yaml.safe_load((DEPLOY / "compose.acl.yaml").read_text())
    (script,) = compose["services"]["acls"]["command"]
    grants: set[Grant] = set()
    for line in script.splitlines():
        if not line.startswith("acl "):
            continue
        words = shlex.split(line)[1:]
        options: dict[str, list[str]] = {}
        for flag, value in zip(words[::2], words[1::2], strict=True):
            options.setdefault(flag, []).append(value)
        (principal,) = options["--allow-principal"]
        (pattern,) = options.get("--resource-pattern-type", ["literal"])
        resources = [("topic", t) for t in options.get("--topic", [])]
        resources += [("group", g) for g in options.get("--group", [])]
        grants |= {
            (principal.removeprefix("User:"), kind, pattern, name, op)
            for kind, name in resources
            for op in options["--operation"]
        }
    return grants


def k8s_users() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "kafka-users.yaml").read_text())
    return [d for d in docs if d["kind"] == "KafkaUser"]


def k8s_grants() -> set[Grant]:
    """The grants of the Strimzi KafkaUsers (the set-up Job's admin aside)."""
    patterns = {"literal": "literal", "prefix": "prefixed"}
    return {
        (user["metadata"]["name"], r["type"], patterns[r["patternType"]], r["name"], op)
        for user in k8s_users()
        if user["metadata"]["name"] != "erp-admin"
        for acl in user["spec"]["authorization"]["acls"]
        for r in [acl["resource"]]
        for op in acl["operations"]
    }


def writers(grants: Iterable[Grant], topic: str) -> set[str]:
    return {
        who for who, kind, _, name, op in grants if (kind, name, op) == ("topic", topic, "Write")
    }


def test_compose_and_k8s_grant_exactly_the_table() -> None:
    assert compose_grants() == expected()
    assert k8s_grants() == expected()


def test_upstream_principals_write_only_the_upstream_topics() -> None:
    upstream_topics = {s.name for s in ALL_TOPICS if s.written_by == "upstream"}
    assert upstream_topics == {DIRECTORY.name, SUBMISSIONS.name, DECISIONS.name}
    for grants in (compose_grants(), k8s_grants()):
        for who in UPSTREAM:
            mine = {(kind, name, op) for w, kind, _, name, op in grants if w == who}
            assert {op for _, _, op in mine} <= {"Write", "Describe"}, who
        written = {name for who, _, _, name, op in grants if who in UPSTREAM and op == "Write"}
        assert written == upstream_topics


def test_only_the_exporter_writes_export_results_and_every_topic_has_its_writers() -> None:
    for grants in (compose_grants(), k8s_grants()):
        assert writers(grants, EXPORT_RESULTS.name) == {"erp-exporter"}
        for spec in ALL_TOPICS:
            found = writers(grants, spec.name)
            assert found, f"nobody may write {spec.name}"
            if spec.written_by == "upstream":
                # the console publishes the decisions people make there
                assert found <= UPSTREAM | {"erp-console"}, spec.name
            else:
                assert found <= {f"erp-{w}" for w in WORKERS}, spec.name


def test_each_worker_signs_in_as_its_own_principal() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.acl.yaml").read_text())["services"]
    for worker in WORKERS:
        env = compose[worker]["environment"]
        assert env["KAFKA_SASL_USERNAME"] == f"erp-{worker}"
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    jaas = compose["kafka"]["environment"]["KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG"]
    principals = {who for who, *_ in expected()}
    assert all(f"user_{who}=" in jaas for who in principals)
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "erp-pipeline.yaml").read_text()))
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert "KAFKA_SASL_USERNAME" not in secret["stringData"]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }
    users = {u["metadata"]["name"] for u in k8s_users()}
    for name, user in [(f"erp-{w}", f"erp-{w}") for w in WORKERS] + [
        ("erp-pipeline-setup", "erp-admin")
    ]:
        env = {e["name"]: e for e in pods[name]["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == user
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user
        assert user in users
