"""The Helm chart, rendered offline: `helm lint --strict`, `helm template` with the
default values and variants, each validated with `kubernetes-validate --strict`,
and what every rendered manifest must hold (probes, resources, the security
context, no secret in a ConfigMap, the checksum, the grace period)."""

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "aiprox"
BIN = Path(os.environ.get("AIPROX_VENV", ROOT / ".venv")) / "bin"
HELM = str(BIN / "helm") if (BIN / "helm").exists() else shutil.which("helm")

# Values a test sets; none of them may appear in a ConfigMap.
DB_URL = "postgres://aiprox:pg-pass-6f1c@db.internal:5432/aiprox"
NATS_URL = "nats://nats-user:nats-pass-93ab@nats.internal:4222"
ADMIN_TOKEN = "admin-token-value-5d2e8c"
SECRET_KEY = "secret-key-value-0a7b3f9e1c2d4e5f"
SET = [
    f"secrets.values.databaseUrl={DB_URL}",
    f"secrets.values.natsUrl={NATS_URL}",
    f"secrets.values.adminToken={ADMIN_TOKEN}",
    f"secrets.values.secretKey={SECRET_KEY}",
]

VARIANTS = {
    "defaults": [],
    "with secrets": SET,
    "existing secret": ["secrets.existingSecret=my-aiprox", "media.persistence.existingClaim=shared-media"],
    "ingress on": SET + ["admin.ingress.enabled=true", "admin.ingress.className=nginx"],
    "autoscaling off": SET + ["gateway.autoscaling.enabled=false", "gateway.replicas=3", "gateway.pdb.enabled=false"],
    "monitoring, custom metric": SET
    + ["serviceMonitor.enabled=true", "gateway.autoscaling.inFlight.enabled=true"],
    "traces on": SET + ["tracing.endpoint=http://otel-collector.observability:4317", "tracing.samplerArg=0.25"],
}


def helm(*args: str) -> str:
    assert HELM, "helm is missing: python scripts/install_helm.py"
    run = subprocess.run([HELM, *args], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def render(sets: list[str], name: str = "prod") -> str:
    args = ["template", name, str(CHART), "--namespace", "llm"]
    for s in sets:
        args += ["--set", s]
    return helm(*args)


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def of_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def env_of(deployment: dict) -> dict[str, dict]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_traces_are_off_by_default_and_every_component_exports_once_an_endpoint_is_set():
    for d in of_kind(docs(render(VARIANTS["defaults"])), "Deployment"):
        assert not [n for n in env_of(d) if n.startswith("OTEL_")], d["metadata"]["name"]
    deployments = of_kind(docs(render(VARIANTS["traces on"])), "Deployment")
    assert len(deployments) == 4
    for d in deployments:
        env = env_of(d)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4317"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "grpc"
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.25"
        assert env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]["value"] == "false"
        # The pod's name, defined before the variable that refers to it.
        names = list(env)
        assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
        assert "k8s.pod.name=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    run = subprocess.run([HELM, "template", "x", str(CHART), "--set", "tracing.protocol=udp"], capture_output=True, text=True)
    assert run.returncode != 0 and "protocol" in run.stderr


def test_helm_lint_strict():
    out = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_is_valid_kubernetes(variant, tmp_path):
    rendered = tmp_path / "out.yaml"
    # The Prometheus Operator's kinds are not in the bundled schemas: checked below.
    core = [m for m in docs(render(VARIANTS[variant])) if m["apiVersion"] != "monitoring.coreos.com/v1"]
    rendered.write_text(yaml.safe_dump_all(core))
    run = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") == len(core)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_has_probes_resources_and_a_locked_down_context(variant):
    deployments = of_kind(docs(render(VARIANTS[variant])), "Deployment")
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments}
    assert components == {"gateway", "logger", "media", "admin"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            where = f"{d['metadata']['name']}/{c['name']}"
            for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")]:
                assert c[probe]["httpGet"]["path"] == path, where
            assert c["resources"]["requests"] and c["resources"]["limits"], where
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert c["args"] == [d["metadata"]["labels"]["app.kubernetes.io/component"]], where


def test_the_hpa_scales_the_gateway_and_autoscaling_off_sets_replicas():
    manifests = docs(render(SET))
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    gateway = next(d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-gateway"))
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": gateway["metadata"]["name"]}
    assert "replicas" not in gateway["spec"]  # the HPA owns it
    (pdb,) = of_kind(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == gateway["spec"]["selector"]["matchLabels"]

    off = docs(render(VARIANTS["autoscaling off"]))
    assert of_kind(off, "HorizontalPodAutoscaler") == []
    gateway = next(d for d in of_kind(off, "Deployment") if d["metadata"]["name"].endswith("-gateway"))
    assert gateway["spec"]["replicas"] == 3

    custom = of_kind(docs(render(VARIANTS["monitoring, custom metric"])), "HorizontalPodAutoscaler")[0]
    assert [m["type"] for m in custom["spec"]["metrics"]] == ["Resource", "Pods"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_secret_value_in_any_configmap_or_pod_spec(variant):
    manifests = docs(render(VARIANTS[variant]))
    secrets = [DB_URL, NATS_URL, ADMIN_TOKEN, SECRET_KEY, "pg-pass", "nats-pass"]
    for m in manifests:
        if m["kind"] == "Secret":
            continue
        text = yaml.safe_dump(m)
        for s in secrets:
            assert s not in text, f"{s!r} in {m['kind']} {m['metadata']['name']}"
    for d in of_kind(manifests, "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c["env"]:
                if e["name"] in ("AIPROX_ADMIN_TOKEN", "AIPROX_SECRET_KEY", "AIPROX_DATABASE_URL", "AIPROX_NATS_URL"):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e
    defaults = (CHART / "values.yaml").read_text()
    assert re.search(r"^\s+(adminToken|secretKey|databaseUrl|natsUrl): \"\"$", defaults, re.M)
    assert not re.search(r"(adminToken|secretKey|databaseUrl|natsUrl): \"[^\"]+\"", defaults)


def test_each_component_gets_only_the_secrets_it_needs():
    needs = {
        "gateway": {"AIPROX_SECRET_KEY", "AIPROX_NATS_URL"},
        "logger": {"AIPROX_DATABASE_URL", "AIPROX_NATS_URL"},
        "media": {"AIPROX_NATS_URL"},
        "admin": {"AIPROX_ADMIN_TOKEN", "AIPROX_SECRET_KEY", "AIPROX_DATABASE_URL", "AIPROX_NATS_URL"},
    }
    for d in of_kind(docs(render(SET)), "Deployment"):
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        (c,) = d["spec"]["template"]["spec"]["containers"]
        got = {e["name"] for e in c["env"] if "valueFrom" in e}
        assert got == needs[component], component


def test_the_chart_made_secret_holds_the_values_and_an_existing_one_replaces_it():
    (secret,) = of_kind(docs(render(SET)), "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"admin-token": ADMIN_TOKEN, "secret-key": SECRET_KEY, "database-url": DB_URL, "nats-url": NATS_URL}
    generated = of_kind(docs(render(SET[:2])), "Secret")[0]["data"]
    assert len(base64.b64decode(generated["admin-token"])) >= 32
    assert len(base64.b64decode(generated["secret-key"])) >= 32

    existing = docs(render(VARIANTS["existing secret"]))
    assert of_kind(existing, "Secret") == []
    for d in of_kind(existing, "Deployment"):
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "valueFrom" in e:
                assert e["valueFrom"]["secretKeyRef"]["name"] == "my-aiprox"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for d in of_kind(existing, "Deployment")
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"shared-media"}
    assert of_kind(existing, "PersistentVolumeClaim") == []


def checksums(manifests: list[dict]) -> set[str]:
    return {d["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for d in of_kind(manifests, "Deployment")}


def test_the_config_checksum_changes_with_the_configuration():
    before = checksums(docs(render(SET)))
    assert len(before) == 1
    after = checksums(docs(render(SET + ["config.logger.batch_max=500"])))
    assert after != before
    assert checksums(docs(render(SET))) == before  # stable when nothing changed
    (cm,) = of_kind(docs(render(SET + ["config.logger.batch_max=500"])), "ConfigMap")
    assert yaml.safe_load(cm["data"]["aiprox.yaml"])["logger"]["batch_max"] == 500


def seconds(d: str) -> int:
    n, unit = int(d[:-1]), d[-1]
    return n * {"s": 1, "m": 60, "h": 3600}[unit]


def test_the_gateway_grace_period_exceeds_its_shutdown_grace_and_drain():
    manifests = docs(render(SET))
    (cm,) = of_kind(manifests, "ConfigMap")
    gw = yaml.safe_load(cm["data"]["aiprox.yaml"])["gateway"]
    gateway = next(d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-gateway"))
    grace = gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > seconds(gw["shutdown_grace"]) + seconds(gw["drain_delay"])
    # A grace period that would cut streams is refused at render time.
    run = subprocess.run(
        [HELM, "template", "x", str(CHART), "--set", "gateway.terminationGracePeriodSeconds=30"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0 and "must exceed" in run.stderr


def test_names_fit_in_63_characters():
    long = "a-release-name-that-is-as-long-as-helm-allows-it-53ch"
    assert len(long) == 53
    for m in docs(render(SET, name=long)):
        assert len(m["metadata"]["name"]) <= 63, m["metadata"]["name"]
    names = [m["metadata"]["name"] for m in of_kind(docs(render(SET, name=long)), "Deployment")]
    assert len(set(names)) == 4 and all(n.endswith(("-gateway", "-logger", "-media", "-admin")) for n in names)


def test_the_schema_rejects_unknown_and_wrong_values():
    for bad in ["bogus=1", "gateway.port=0", "image.pullPolicy=Sometimes", "config.log_format=xml"]:
        run = subprocess.run([HELM, "template", "x", str(CHART), "--set", bad], capture_output=True, text=True, check=False)
        assert run.returncode != 0, bad


def test_the_dockerfile_is_hadolint_clean():
    run = subprocess.run(
        [str(BIN / "hadolint"), str(ROOT / "deploy" / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


PROMETHEUS = ROOT / "deploy" / "prometheus"


def test_alert_rules_check_and_their_unit_tests_pass():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus"
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        run = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_test_case_that_fires_it():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load((PROMETHEUS / "alerts.test.yaml").read_text())["tests"]
    fired = {t["alertname"] for c in cases for t in c.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts == fired


def test_the_compose_split_is_scraped_whole_and_its_prometheus_config_checks(tmp_path):
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    aiprox = {name: s for name, s in compose["services"].items() if s.get("image") == "aiprox:local"}
    assert sorted(s["command"][0] for s in aiprox.values()) == ["admin", "gateway", "gateway", "logger", "media"]
    for name, s in aiprox.items():
        assert s["read_only"] is True and s["environment"]["AIPROX_OPS__LISTEN"] == "0.0.0.0:9090", name
        assert "AIPROX_ADMIN_TOKEN" not in s["environment"] or name == "admin", name
        # Every component's spans go to the collector, whose pipeline ends somewhere.
        assert s["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317", name
    collector = yaml.safe_load((ROOT / "deploy" / "otel" / "collector.yaml").read_text())
    assert "otel-collector" in compose["services"] and "jaeger" in compose["services"]
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    for pipeline in collector["service"]["pipelines"].values():
        assert all(e in collector["exporters"] for e in pipeline["exporters"])
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {t.split(":")[0] for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == set(aiprox)
    # promtool, with the rules where this checkout has them.
    config["rule_files"] = [str(PROMETHEUS / "alerts.yaml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    run = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", str(tmp_path / "prometheus.yml")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
