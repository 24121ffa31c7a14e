"""deploy/helm/ticketroute rendered for every ci/ scenario and checked against the Kubernetes
schemas and against what the services really read and serve."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from services.runtime import metrics as service_metrics
from services.runtime.health import Readiness
from services.runtime.health import route as health_route
from services.runtime.metrics import BatchHistogram
from services.runtime.settings import SAMPLE_CATALOG, SERVICES
from services.runtime.statestore import RESTORING
from services.tracker.app import OpenClocks
from tests.deploy.conftest import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    SCHEMA_ERROR,
    HelmRun,
    Manifest,
    Render,
    Rendered,
    container,
    env_entries,
    env_values,
    scenario_file,
    template_args,
)

SETTINGS = SERVICES
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Optional settings the chart leaves unset unless their values are given (their default is None).
OPTIONAL_UNSET = {
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "TSANET_SUBMITTER_PHONE",
}
DNS_PORT = 53


def env_names(cls: type) -> set[str]:
    return {name.upper() for name in cls.model_fields}


def defaults(render: Render) -> Rendered:
    return render(scenario_file("defaults"))


# --- the scenarios, lint and the Kubernetes schemas ------------------------------------------


def test_every_scenario_the_issue_names_is_there() -> None:
    assert set(SCENARIOS) >= {
        "defaults",
        "external-secret",
        "hpa",
        "monitoring",
        "existing-catalog",
        "tracker",
    }


def test_helm_lint_strict(scenario: str, run_helm: HelmRun) -> None:
    result = run_helm("lint", "--strict", str(CHART), "--values", str(scenario_file(scenario)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifests_validate_against_kubernetes_schemas(rendered: Rendered) -> None:
    import kubernetes_validate  # noqa: PLC0415 - fails this test only, with its own message

    assert rendered.docs
    for doc in rendered.docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["namespace"] in {NAMESPACE, "monitoring"}, where
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, where
        assert not list(null_fields(doc)), f"{where} has empty fields: {list(null_fields(doc))}"
        if doc["kind"] in CRD_KINDS:
            continue  # not in kubernetes-validate's schemas: see test_monitoring_resources
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{where} is not a valid Kubernetes {KUBERNETES_VERSION} object: "
                f"{error.message} at {list(error.path)}"
            )


def null_fields(node: Any, path: str = "") -> Iterator[str]:
    """Paths of null values: an empty block a template left behind (`annotations:`)."""
    if node is None:
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from null_fields(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from null_fields(value, f"{path}[{index}]")


def test_kubernetes_validate_is_strict(render: Render) -> None:
    """The check above would pass anything if strict mode let unknown fields through."""
    import kubernetes_validate  # noqa: PLC0415

    deployment = json.loads(json.dumps(defaults(render).deployments()["router"]))
    container(deployment)["readOnlyRootFileSystem"] = True  # the classic typo
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_rendered_kinds(scenario: str, rendered: Rendered) -> None:
    kinds = sorted({d["kind"] for d in rendered.docs})
    expected = {
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    assert set(kinds) >= expected - ({"ConfigMap"} if scenario == "existing-catalog" else set())
    assert ("HorizontalPodAutoscaler" in kinds) == (scenario == "hpa")
    assert ("ServiceMonitor" in kinds) == (scenario == "monitoring")
    assert ("PrometheusRule" in kinds) == (scenario == "monitoring")
    assert sorted(rendered.deployments()) == ["enricher", "router", "tracker"]


# --- env: one to one onto the settings -------------------------------------------------------


def test_env_vars_are_settings_the_service_reads(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        names = [e["name"] for e in env_entries(deployment)]
        assert len(names) == len(set(names)), f"{component}: duplicate env {names}"
        unknown = set(names) - env_names(SETTINGS[component])
        assert not unknown, f"{component} sets env its settings do not read: {sorted(unknown)}"
        assert not container(deployment).get("envFrom"), "envFrom would hide what is set"


def test_bootstrap_servers_always_set(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        servers = env_values(deployment).get("KAFKA_BOOTSTRAP_SERVERS", "")
        assert re.fullmatch(r"[^,\s]+:\d+(,[^,\s]+:\d+)*", servers), (component, servers)


def test_every_setting_is_exposed(render: Render) -> None:
    """With the defaults every setting is set but the optional ones left to their None."""
    for component, deployment in defaults(render).deployments().items():
        names = {e["name"] for e in env_entries(deployment)}
        assert names == env_names(SETTINGS[component]) - OPTIONAL_UNSET, component


def test_rendered_env_validates_as_settings(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services would start with this env: each Deployment's env, and only it, loads."""
    for component, deployment in rendered.deployments().items():
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for entry in env_entries(deployment):
            if entry["name"].startswith("KAFKA_SSL_") and entry["name"].endswith("FILE"):
                # Mounted from the Secret in the pod; the settings load (and check) the files
                # there, so here only where they point is checked.
                assert entry["value"].startswith("/etc/ticketroute/kafka-tls/"), entry
            elif "value" in entry:
                monkeypatch.setenv(entry["name"], entry["value"])
            else:
                assert entry["valueFrom"]["secretKeyRef"]["name"], entry
                monkeypatch.setenv(entry["name"], "from-the-secret")
        settings = SETTINGS[component]()
        values = env_values(deployment)
        assert settings.kafka_bootstrap_servers == values["KAFKA_BOOTSTRAP_SERVERS"]
        assert settings.metrics_port == container(deployment)["ports"][0]["containerPort"]
        assert settings.topic_partitions == int(values["TOPIC_PARTITIONS"])


def test_integers_render_as_integers(run_helm: HelmRun, tmp_path: Path) -> None:
    """Helm reads numbers in values files as floats: 1000000 must not become 1e+06."""
    values = tmp_path / "big.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "router": {"duplicateWindow": 1_000_000, "revisionMemory": 2_000_000},
                "tracker": {"heldResponseSeconds": 604_800},
                "consumer": {"sessionTimeoutMs": 300_000},
            }
        )
    )
    result = run_helm(*template_args([scenario_file("defaults"), values], []))
    assert result.returncode == 0, result.stderr
    deployments = Rendered([d for d in yaml.safe_load_all(result.stdout) if d]).deployments()
    env = env_values(deployments["router"])
    assert env["DUPLICATE_WINDOW"] == "1000000"
    assert env["REVISION_MEMORY"] == "2000000"
    assert env["SESSION_TIMEOUT_MS"] == "300000"
    assert env_values(deployments["tracker"])["HELD_RESPONSE_SECONDS"] == "604800"


# --- probes, ports, grace ----------------------------------------------------------------------


def test_probes_hit_the_paths_the_services_serve(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        c = container(deployment)
        port = c["ports"][0]
        assert port["name"] == "metrics"
        assert port["containerPort"] == int(env_values(deployment)["METRICS_PORT"]), component
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert c["command"] == ["python", "-m", f"services.{component}"]
    ready = Readiness()
    ready.clear("starting")
    assert health_route("/healthz", Readiness()).startswith(b"HTTP/1.1 200")
    assert health_route("/readyz", ready).startswith(b"HTTP/1.1 200")
    assert health_route("/readyz", Readiness()).startswith(b"HTTP/1.1 503")


def test_a_restore_makes_a_pod_unready_but_restarts_nothing(rendered: Rendered) -> None:
    """While the router or the tracker restores its state /readyz answers 503: only the
    readiness probe asks it, so the pod leaves rotation and is not restarted (a restart would
    start the restore over). The probes that restart a container ask /healthz, which answers
    meanwhile, and give a slow start minutes rather than seconds."""
    restoring = Readiness()
    restoring.clear("starting")
    restoring.fail(RESTORING)
    assert health_route("/readyz", restoring).startswith(b"HTTP/1.1 503")
    assert health_route("/healthz", restoring).startswith(b"HTTP/1.1 200")
    for component, deployment in rendered.deployments().items():
        c = container(deployment)
        for probe in ("startupProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/healthz", (component, probe)
        startup, liveness = c["startupProbe"], c["livenessProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, component
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60, component
        assert liveness["timeoutSeconds"] >= 5, component


def test_default_ports_are_the_services_defaults(render: Render) -> None:
    for component, deployment in defaults(render).deployments().items():
        default = SETTINGS[component].model_fields["metrics_port"].default
        assert container(deployment)["ports"][0]["containerPort"] == default


def test_metrics_service_targets_the_metrics_port(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        service = rendered.component("Service", component)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == "metrics"
        assert port["name"] == "metrics"
        assert port["port"] == int(env_values(deployment)["METRICS_PORT"])


def test_termination_grace_exceeds_shutdown_grace(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        grace = float(env_values(deployment)["SHUTDOWN_GRACE_SECONDS"])
        termination = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert termination > grace, component


def test_termination_grace_follows_a_fractional_shutdown_grace(
    render: Render, tmp_path: Path
) -> None:
    values = tmp_path / "grace.yaml"
    values.write_text("shutdownGraceSeconds: 45.5\n")  # --set would make it a string
    rendered = render(scenario_file("defaults"), values)
    for deployment in rendered.deployments().values():
        assert env_values(deployment)["SHUTDOWN_GRACE_SECONDS"] == "45.5"
        spec = deployment["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] == math.ceil(45.5) + 10


# --- hardening ---------------------------------------------------------------------------------


def test_security_context(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, component
        assert pod["enableServiceLinks"] is False, component
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"].get("runAsUser", 1) != 0
        sc = container(deployment)["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        # The read-only root filesystem needs a writable /tmp.
        mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
        tmp = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"]["name"])
        assert "emptyDir" in tmp
        for path, mount in mounts.items():
            assert path == "/tmp" or mount["readOnly"] is True, (component, path)


def test_service_account_mounts_no_token(rendered: Rendered) -> None:
    (account,) = rendered.kinds("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for deployment in rendered.deployments().values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_schema_keeps_the_hardening(run_helm: HelmRun) -> None:
    for item in (
        "containerSecurityContext.readOnlyRootFilesystem=false",
        "containerSecurityContext.allowPrivilegeEscalation=true",
        "podSecurityContext.runAsNonRoot=false",
    ):
        result = run_helm(*template_args([scenario_file("defaults")], [item]))
        assert result.returncode != 0, item
        assert SCHEMA_ERROR in result.stderr, (item, result.stderr)


# --- NetworkPolicy -----------------------------------------------------------------------------


def kafka_ports(deployment: Manifest) -> set[int]:
    servers = env_values(deployment)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    return {int(s.rsplit(":", 1)[1]) for s in servers}


def test_network_policy_egress_only_kafka_and_dns(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        policy = rendered.component("NetworkPolicy", component)
        spec = policy["spec"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]

        (ingress,) = spec["ingress"]
        metrics_port = int(env_values(deployment)["METRICS_PORT"])
        assert ingress["ports"] == [{"port": metrics_port, "protocol": "TCP"}]

        kafka, dns = spec["egress"]
        assert {p["port"] for p in kafka["ports"]} == kafka_ports(deployment)
        assert {p["protocol"] for p in kafka["ports"]} == {"TCP"}
        assert {(p["port"], p["protocol"]) for p in dns["ports"]} >= {
            (DNS_PORT, "UDP"),
            (DNS_PORT, "TCP"),
        }
        assert {p["port"] for p in dns["ports"]} <= {DNS_PORT, 5353}
        for rule in spec["egress"]:
            assert "ports" in rule, "an egress rule without ports allows every port"


def test_network_policy_narrows_peers_when_asked(render: Render) -> None:
    rendered = render(scenario_file("external-secret"))
    policy = rendered.component("NetworkPolicy", "router")["spec"]
    assert policy["egress"][0]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}
    ]
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert {p["port"] for p in policy["egress"][0]["ports"]} == {9093}


# --- availability: replicas, PDB, HPA -------------------------------------------------------


def test_replicas_within_partitions_and_pdb(rendered: Rendered) -> None:
    for component, deployment in rendered.deployments().items():
        partitions = int(env_values(deployment)["TOPIC_PARTITIONS"])
        hpas = [
            h
            for h in rendered.kinds("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        ]
        if hpas:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
            assert hpas[0]["spec"]["maxReplicas"] <= partitions
        else:
            assert 1 <= deployment["spec"]["replicas"] <= partitions
        pdb = rendered.component("PodDisruptionBudget", component)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1


def test_hpa_scales_the_deployments(render: Render) -> None:
    rendered = render(scenario_file("hpa"))
    for component, deployment in rendered.deployments().items():
        hpa = rendered.component("HorizontalPodAutoscaler", component)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


# --- Kafka credentials and TLS --------------------------------------------------------------


def tls_mount(deployment: Manifest) -> tuple[str, dict[str, str], str]:
    """Mount path, Secret items (file name -> key) and Secret name of the kafka-tls volume."""
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-tls"]
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == "kafka-tls"]
    assert mount["readOnly"] is True
    items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
    return mount["mountPath"], items, volume["secret"]["secretName"]


def test_external_secret_wiring(render: Render) -> None:
    rendered = render(scenario_file("external-secret"))
    assert not rendered.kinds("Secret"), "an existing Secret is used, none is rendered"
    for deployment in rendered.deployments().values():
        env = {e["name"]: e for e in env_entries(deployment)}
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "ticketroute-kafka-credentials", "key": "password"}
        }
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        path, items, secret = tls_mount(deployment)
        assert secret == "ticketroute-kafka-credentials"
        assert items == {"ca.crt": "ca.crt", "tls.crt": "user.crt", "tls.key": "user.key"}
        assert env["KAFKA_SSL_CAFILE"]["value"] == f"{path}/ca.crt"
        assert env["KAFKA_SSL_CERTFILE"]["value"] == f"{path}/tls.crt"
        assert env["KAFKA_SSL_KEYFILE"]["value"] == f"{path}/tls.key"


def test_chart_secret_wiring(render: Render) -> None:
    rendered = render(scenario_file("hpa"))
    (secret,) = rendered.kinds("Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["sasl-password"] == "not-a-real-password"
    assert data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(data) == {"sasl-password", "ca.crt"}
    for deployment in rendered.deployments().values():
        env = {e["name"]: e for e in env_entries(deployment)}
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": secret["metadata"]["name"],
            "key": "sasl-password",
        }
        assert "KAFKA_SSL_CERTFILE" not in env
        path, items, secret_name = tls_mount(deployment)
        assert secret_name == secret["metadata"]["name"]
        assert items == {"ca.crt": "ca.crt"}
        assert env["KAFKA_SSL_CAFILE"]["value"] == f"{path}/ca.crt"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/kafka-secret" in annotations
    non_secrets = [d for d in rendered.docs if d["kind"] != "Secret"]
    assert "not-a-real-password" not in json.dumps(non_secrets)


def test_plaintext_renders_no_secret_and_no_tls(render: Render) -> None:
    rendered = defaults(render)
    assert not rendered.kinds("Secret")
    for deployment in rendered.deployments().values():
        names = {e["name"] for e in env_entries(deployment)}
        assert not names & OPTIONAL_UNSET
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert "kafka-tls" not in {v["name"] for v in volumes}


# --- the catalog -------------------------------------------------------------------------------


def catalog_volume(deployment: Manifest) -> tuple[str, str, str]:
    """ConfigMap name, key and mount path of the enricher's catalog."""
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "catalog"]
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == "catalog"]
    (item,) = volume["configMap"]["items"]
    assert item["key"] == item["path"]
    # Mounted as a directory: the kubelet swaps a ConfigMap's files in place there, where a
    # subPath mount would never see a change (docs/catalog-changes.md).
    assert "subPath" not in mount
    assert mount["mountPath"] == "/etc/ticketroute/catalog"
    return volume["configMap"]["name"], item["key"], mount["mountPath"]


def test_chart_catalog_copy_is_the_sample() -> None:
    assert (CHART / "files" / "catalog.yaml").read_bytes() == SAMPLE_CATALOG.read_bytes(), (
        "deploy/helm/ticketroute/files/catalog.yaml must be a copy of "
        "services/samples/catalog.yaml: cp services/samples/catalog.yaml "
        "deploy/helm/ticketroute/files/catalog.yaml"
    )


def test_default_catalog_configmap(render: Render) -> None:
    rendered = defaults(render)
    enricher = rendered.deployments()["enricher"]
    name, key, path = catalog_volume(enricher)
    configmap = rendered.named("ConfigMap", name)
    assert configmap["data"][key] == SAMPLE_CATALOG.read_text()
    assert env_values(enricher)["CATALOG_PATH"] == f"{path}/{key}"
    # The enricher applies a new catalog itself: a catalog change must not restart the pods.
    assert "checksum/catalog" not in enricher["spec"]["template"]["metadata"].get("annotations", {})
    for other in ("router", "tracker"):
        volumes = rendered.deployments()[other]["spec"]["template"]["spec"]["volumes"]
        assert "catalog" not in {v["name"] for v in volumes}, other


def test_catalog_from_values(render: Render, tmp_path: Path) -> None:
    values = tmp_path / "catalog.yaml"
    values.write_text(yaml.safe_dump({"catalog": {"content": "version: custom\nvendors: []\n"}}))
    rendered = render(scenario_file("defaults"), values)
    name, key, _ = catalog_volume(rendered.deployments()["enricher"])
    assert rendered.named("ConfigMap", name)["data"][key] == "version: custom\nvendors: []\n"
    # A new catalog in the values leaves the pod templates as they were: no rollout.
    for component, deployment in rendered.deployments().items():
        before = defaults(render).deployments()[component]
        assert deployment["spec"]["template"] == before["spec"]["template"], component


def test_existing_catalog_configmap(render: Render) -> None:
    rendered = render(scenario_file("existing-catalog"))
    assert not rendered.kinds("ConfigMap"), "the existing ConfigMap is used, none is rendered"
    enricher = rendered.deployments()["enricher"]
    name, key, path = catalog_volume(enricher)
    assert (name, key) == ("openstack-certification-catalog", "catalog.json")
    assert env_values(enricher)["CATALOG_PATH"] == f"{path}/catalog.json"
    assert "checksum/catalog" not in enricher["spec"]["template"]["metadata"].get("annotations", {})


# --- the tracker and the state topics ------------------------------------------------------------


def test_tracker_scenario(render: Render) -> None:
    """ci/tracker-values.yaml: the values of the tracker and of the state topics reach the
    services that read them, and only those."""
    rendered = render(scenario_file("tracker"))
    deployments = rendered.deployments()
    tracker = deployments["tracker"]
    env = env_values(tracker)
    assert env["TRACKER_GROUP_ID"] == "support-ticketroute-tracker"
    assert env["AT_RISK_FRACTION"] == "0.8"
    assert env["HELD_RESPONSE_SECONDS"] == "14400"
    assert env["TOPIC_SLA_EVENTS"] == "support.sla.events"
    assert env["TOPIC_RESPONSES_REDHAT"] == "support.responses.redhat"
    assert env["TOPIC_RESPONSES_TSANET"] == "support.responses.tsanet"
    assert env["TOPIC_TRACKER_STATE"] == "support.ticketroute.tracker.state"
    assert env["TOPIC_CREATE"] == "false"
    assert tracker["spec"]["replicas"] == 4
    assert container(tracker)["resources"]["limits"] == {"cpu": "2", "memory": "768Mi"}
    assert container(tracker)["startupProbe"]["failureThreshold"] == 120
    assert env_values(deployments["router"])["TOPIC_ROUTER_MEMORY"] == (
        "support.ticketroute.router.memory"
    )
    # Each state topic name goes to its own service only.
    for component, deployment in deployments.items():
        names = set(env_values(deployment))
        assert ("TOPIC_TRACKER_STATE" in names) == (component == "tracker"), component
        assert ("TOPIC_ROUTER_MEMORY" in names) == (component == "router"), component
    assert rendered.component("PodDisruptionBudget", "tracker")["spec"]["maxUnavailable"] == 1
    (port,) = rendered.component("Service", "tracker")["spec"]["ports"]
    assert port["port"] == 9103


# --- monitoring: ServiceMonitor, PrometheusRule, dashboard ------------------------------------


def metric_labels() -> dict[str, set[str]]:
    """Exported series name -> label names, from the services' own metric objects."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    known: dict[str, set[str]] = {}
    collectors: list[tuple[object, set[str]]] = [
        (obj, set(getattr(obj, "_labelnames", ())))  # prometheus_client's metrics
        for obj in vars(service_metrics).values()
        if isinstance(obj, MetricWrapperBase | BatchHistogram)
    ]
    collectors.append((OpenClocks, set(OpenClocks.LABELS)))
    for obj, labels in collectors:
        families = obj.describe() if hasattr(obj, "describe") else [OpenClocks.family()]
        if isinstance(obj, BatchHistogram):
            families = list(obj.collect())
        for family in families:
            for suffix in suffixes[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                known[family.name + suffix] = labels | extra
    return known


TARGET_LABELS = {"namespace", "job", "pod", "service", "instance", "endpoint", "container"}
# The tracker's series the dashboard and the alerts read, with their labels.
TRACKER_METRICS = {
    "ticketroute_sla_open_clocks": {"party", "role"},
    "ticketroute_sla_events_total": {"type"},
    "ticketroute_sla_breaches_total": {"party", "vendor"},
    "ticketroute_sla_at_risk_total": {"party", "vendor"},
    "ticketroute_sla_responses_ignored_total": {"reason"},
    "ticketroute_sla_timer_lag_seconds_bucket": {"le"},
}
EXTERNAL = {
    "up": TARGET_LABELS,
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition", "cluster"},
}


def check_promql(expr: str) -> None:
    known = metric_labels()
    selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr)
    assert selectors, expr
    for name, matchers in selectors:
        labels = known.get(name, EXTERNAL.get(name))
        assert labels is not None, f"{name} is not a metric the services export: {expr}"
        used = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
        assert used <= labels | TARGET_LABELS, (name, used)
    assert expr.count("(") == expr.count(")"), expr


def test_metric_names_the_chart_relies_on_exist() -> None:
    known = metric_labels()
    for name in (
        "ticketroute_deadlettered_total",
        "ticketroute_tickets_routed_total",
        "ticketroute_partner_tickets_total",
        "ticketroute_messages_consumed_total",
        "ticketroute_processing_latency_seconds_bucket",
        "ticketroute_batch_seconds_bucket",
        "ticketroute_ack_wait_seconds_bucket",
        "ticketroute_ready",
        "ticketroute_messages_in_flight",
        "ticketroute_partitions_stalled",
        "ticketroute_state_restore_seconds_bucket",
        "ticketroute_state_restored_records_total",
        *TRACKER_METRICS,
    ):
        assert name in known, name
    assert known["ticketroute_tickets_routed_total"] == {"route", "rule"}
    assert known["ticketroute_partner_tickets_total"] == {"vendor"}
    for name, labels in TRACKER_METRICS.items():
        assert known[name] == labels, name


def test_monitoring_resources(render: Render) -> None:
    rendered = render(scenario_file("monitoring"))
    for component, deployment in rendered.deployments().items():
        monitor = rendered.component("ServiceMonitor", component)
        service = rendered.component("Service", component)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        spec = monitor["spec"]
        assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
        assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = spec["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics"
        for key in ("interval", "scrapeTimeout"):
            assert re.fullmatch(r"\d+(ms|s|m|h)", endpoint[key])
        assert deployment["metadata"]["name"] == service["metadata"]["name"]

    (rule,) = rendered.kinds("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) >= {
        "TicketrouteDeadLettersHigh",
        "TicketrouteConsumerLagHigh",
        "TicketrouteNotReady",
        "TicketroutePartnerTopicSilent",
        "TicketroutePartitionStalled",
        "TicketrouteSlaBreached",
        "TicketrouteSlaTimerLagHigh",
    }
    for name, alert in alerts.items():
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name)
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["labels"]["team"] == "openstack-support"
        assert alert["annotations"]["summary"]
        assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", alert.get("for", "0s"))
        check_promql(alert["expr"])
    routers = f'namespace="{NAMESPACE}", job="{RELEASE}-ticketroute-router"'
    assert routers in alerts["TicketroutePartnerTopicSilent"]["expr"]
    assert 'route="partner"' in alerts["TicketroutePartnerTopicSilent"]["expr"]
    lag = alerts["TicketrouteConsumerLagHigh"]["expr"]
    assert 'kafka_consumergroup_lag{cluster="prod", consumergroup="ticketroute-enricher"}' in lag
    assert 'consumergroup="ticketroute-router"' in lag
    assert 'consumergroup="ticketroute-tracker"' in lag
    assert alerts["TicketrouteNotReady"]["for"] == "5m"
    assert "ticketroute_ready" in alerts["TicketrouteNotReady"]["expr"]
    services = f'namespace="{NAMESPACE}", job=~"{RELEASE}-ticketroute-(enricher|router|tracker)"'
    for name in ("TicketrouteNotReady", "TicketroutePartitionStalled", "TicketrouteMetricsDown"):
        assert services in alerts[name]["expr"], name
    stalled = alerts["TicketroutePartitionStalled"]
    assert "ticketroute_partitions_stalled{" in stalled["expr"]
    assert stalled["expr"].endswith("> 0")
    assert stalled["for"] == "2m"
    trackers = f'namespace="{NAMESPACE}", job="{RELEASE}-ticketroute-tracker"'
    # Any breach of the last five minutes, one alert per party and vendor, at once.
    breached = alerts["TicketrouteSlaBreached"]
    assert breached["expr"].startswith("sum by (namespace, party, vendor) (")
    assert f"increase(ticketroute_sla_breaches_total{{{trackers}}}[5m])" in breached["expr"]
    assert "offset 5m" in breached["expr"]
    assert breached["expr"].endswith(") > 0")
    assert "for" not in breached
    assert breached["labels"]["severity"] == "warning"
    lagging = alerts["TicketrouteSlaTimerLagHigh"]
    assert lagging["expr"].startswith("histogram_quantile(0.99, ")
    assert f"ticketroute_sla_timer_lag_seconds_bucket{{{trackers}}}" in lagging["expr"]
    assert lagging["expr"].endswith(") > 5")
    assert lagging["for"] == "5m"
    assert lagging["labels"]["severity"] == "warning"


def test_dashboard_configmap(render: Render) -> None:
    rendered = render(scenario_file("monitoring"))
    (configmap,) = [c for c in rendered.kinds("ConfigMap") if "ticketroute.json" in c["data"]]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Support"}
    text = configmap["data"]["ticketroute.json"]
    assert "__" not in text.replace("$__rate_interval", ""), "a placeholder was not replaced"
    dashboard: dict[str, Any] = json.loads(text)
    assert 0 < len(dashboard["uid"]) <= 40
    titles = {p["title"] for p in dashboard["panels"]}
    assert titles >= {
        "Tickets routed by rule",
        "Volume per partner topic",
        "Dead letters by reason",
        "Processing latency p50 / p99",
        "Consumer lag",
        "Open SLA clocks by party and role",
        "SLA breaches by party and vendor",
        "SLA at risk by party and vendor",
        "SLA timer lag p99",
        "State restore time",
    }
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for expr in exprs:
        check_promql(expr)
    read = {name for e in exprs for name in re.findall(r"(ticketroute_\w+)\{", e)}
    # Every tracker series has a panel, and each reads this release's tracker only.
    assert set(TRACKER_METRICS) <= read
    assert "ticketroute_state_restore_seconds_bucket" in read
    trackers = f'namespace="{NAMESPACE}", job="{RELEASE}-ticketroute-tracker"'
    for expr in exprs:
        if "ticketroute_sla_" in expr:
            assert trackers in expr, expr
    panels = {p["title"]: p for p in dashboard["panels"]}
    first = {title: panel["targets"][0]["expr"] for title, panel in panels.items()}
    assert first["Open SLA clocks by party and role"].startswith("sum by (party, role) (")
    for title in ("SLA breaches by party and vendor", "SLA at risk by party and vendor"):
        assert first[title].startswith("sum by (party, vendor) (rate("), title
    assert first["SLA timer lag p99"].startswith("histogram_quantile(0.99, ")
    restore = " ".join(t["expr"] for t in panels["State restore time"]["targets"])
    assert f'job=~"{RELEASE}-ticketroute-(router|tracker)"' in restore
    lag = " ".join(t["expr"] for t in panels["Consumer lag"]["targets"])
    assert 'consumergroup="ticketroute-tracker"' in lag
    assert any("histogram_quantile(0.5," in e for e in exprs)
    assert any("histogram_quantile(0.99," in e for e in exprs)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# --- upgrades: a chart change that changes nothing in a pod restarts no pod -------------------


def render_copy(
    run_helm: HelmRun, tmp_path: Path, values: Path, *, version: str, app_version: str
) -> Rendered:
    """The chart copied with another version and appVersion in Chart.yaml, then rendered."""
    chart = tmp_path / f"ticketroute-{version}-{app_version}"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.update(version=version, appVersion=app_version)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    result = run_helm(
        "template", RELEASE, str(chart), "--namespace", NAMESPACE, "--values", str(values)
    )
    assert result.returncode == 0, result.stderr
    return Rendered([d for d in yaml.safe_load_all(result.stdout) if d])


def pod_templates(rendered: Rendered) -> dict[str, Manifest]:
    return {name: d["spec"]["template"] for name, d in rendered.deployments().items()}


def test_a_new_chart_version_leaves_the_pods_unchanged(
    scenario: str, render: Render, run_helm: HelmRun, tmp_path: Path
) -> None:
    """A pod template that changes restarts every pod of its Deployment, and each restart
    rebalances the consumer group: a chart upgrade that changes nothing the pods run must not
    change the pod templates (no chart version in their labels nor in their checksums)."""
    values = scenario_file(scenario)
    before = render(values)
    after = render_copy(run_helm, tmp_path, values, version="9.8.7", app_version="0.1.0")
    for name, deployment in after.deployments().items():
        # The new version did reach the render: the Deployment's own labels carry it.
        assert deployment["metadata"]["labels"]["helm.sh/chart"] == "ticketroute-9.8.7"
        labels = before.deployments()[name]["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "ticketroute-0.1.0"
    assert pod_templates(after) == pod_templates(before)


def test_a_new_app_version_with_a_pinned_image_leaves_the_pods_unchanged(
    render: Render, run_helm: HelmRun, tmp_path: Path
) -> None:
    values = tmp_path / "pinned.yaml"
    values.write_text(scenario_file("hpa").read_text() + "\nimage:\n  tag: 0.1.0\n")
    before = render(values)
    after = render_copy(run_helm, tmp_path, values, version="0.2.0", app_version="0.2.0")
    assert pod_templates(after) == pod_templates(before)
    assert container(after.deployments()["router"])["image"].endswith(":0.1.0")


def test_changed_kafka_credentials_restart_the_pods(render: Render, tmp_path: Path) -> None:
    """The checksum annotation still follows the Secret's data."""
    values = tmp_path / "rotated.yaml"
    values.write_text(yaml.safe_dump({"kafka": {"sasl": {"password": "rotated"}}}))
    before = render(scenario_file("hpa"))
    after = render(scenario_file("hpa"), values)
    for name, deployment in after.deployments().items():
        old = before.deployments()[name]["spec"]["template"]["metadata"]["annotations"]
        new = deployment["spec"]["template"]["metadata"]["annotations"]
        assert new["checksum/kafka-secret"] != old["checksum/kafka-secret"], name


# --- the schema and the templates refuse bad values ----------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        "enricher.replicas=0",
        "router.replicas=0",
        "logging.level=VERBOSE",
        "kafka.bootstrapServers=",
        "kafka.bootstrapServers=null",
        "kafka.bootstrapServers=kafka-without-port",
        "kafka.securityProtocol=SSL_PLAIN",
        "kafka.securityProtocol=SASL_SSL",  # no mechanism, no user name
        "topics.partitions=0",
        "router.duplicateWindow=10",
        "tracker.replicas=0",
        "tracker.atRiskFraction=1",
        "tracker.atRiskFraction=0",
        "tracker.heldResponseSeconds=60",
        "tracker.metricsPort=80",
        "topics.trackerState=tracker state",
        "probes.startup.failureThreshold=0",
        "prometheusRule.slaBreachWindow=five minutes",
        "enricher.metricsPort=80",
        "shutdownGraceSeconds=0",
        "topics.incoming=tickets incoming",
        "imagePullPolicy=Always",  # unknown top-level key: a typo
    ],
)
def test_schema_rejects_bad_values(item: str, run_helm: HelmRun) -> None:
    result = run_helm(*template_args([scenario_file("defaults")], [item]))
    assert result.returncode != 0, f"{item} was accepted"
    assert SCHEMA_ERROR in result.stderr, result.stderr


def test_schema_requires_a_bootstrap_server_without_scenario(run_helm: HelmRun) -> None:
    result = run_helm("template", RELEASE, str(CHART))
    assert result.returncode != 0
    assert SCHEMA_ERROR in result.stderr
    assert "kafka.bootstrapServers" in result.stderr


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["enricher.replicas=7"], "exceeds topics.partitions"),
        (["tracker.replicas=7"], "exceeds topics.partitions"),
        (
            ["router.autoscaling.enabled=true", "router.autoscaling.maxReplicas=9"],
            "exceeds topics.partitions",
        ),
        (
            [
                "kafka.securityProtocol=SASL_SSL",
                "kafka.sasl.mechanism=PLAIN",
                "kafka.sasl.username=u",
            ],
            "needs kafka.sasl.password or kafka.existingSecret.name",
        ),
        (
            ["kafka.securityProtocol=SSL", "kafka.tls.clientCert=PEM"],
            "kafka.tls.clientCert and kafka.tls.clientKey together",
        ),
        (["consumer.heartbeatIntervalMs=5000"], "at most consumer.sessionTimeoutMs / 3"),
    ],
)
def test_templates_refuse_what_the_services_would(
    items: list[str], message: str, run_helm: HelmRun
) -> None:
    result = run_helm(*template_args([scenario_file("defaults")], items))
    assert result.returncode != 0, f"{items} was accepted"
    assert message in result.stderr, result.stderr


def test_scenario_keys_are_documented_values(scenario: str) -> None:
    """Each scenario file only sets keys values.yaml documents (no silently ignored key)."""
    documented = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(given: Any, known: Any, path: str) -> None:
        if isinstance(given, dict) and isinstance(known, dict) and known:
            for key, value in given.items():
                assert key in known, f"{path}{key} is not in values.yaml"
                walk(value, known[key], f"{path}{key}.")

    walk(yaml.safe_load(scenario_file(scenario).read_text()), documented, "")


def test_values_yaml_comments_every_value() -> None:
    """Every key of values.yaml has its own comment on the line above, except keys inside a
    block default documented as a whole (its key's comment starts with "# --" and its value
    spans the following lines, e.g. resources or podSecurityContext)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    key_line = re.compile(r"^(\s*)([A-Za-z_][\w-]*):(.*)$")
    ancestors: list[tuple[int, bool]] = []  # (indent, documented as a whole block)
    undocumented = []
    for index, line in enumerate(lines):
        match = key_line.match(line)
        if not match:
            continue
        indent, rest = len(match.group(1)), match.group(3).strip()
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        first = index
        while first > 0 and lines[first - 1].strip().startswith("#"):
            first -= 1
        comment = lines[first].strip() if first < index else ""
        if not comment and not any(block for _, block in ancestors):
            undocumented.append(f"line {index + 1}: {line.strip()}")
        opens_block = rest == "" or rest.startswith("#")
        ancestors.append((indent, opens_block and comment.startswith("# --")))
    assert not undocumented, "values.yaml keys without a comment:\n" + "\n".join(undocumented)
