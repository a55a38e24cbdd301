"""Deployment files, checked statically (no Docker engine or cluster runs here)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def test_dockerfile_passes_hadolint() -> None:
    done = run(str(BIN / "hadolint"), "--no-color", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_unprivileged_without_build_tools() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "USER 10001" in final_stage
    assert "HEALTHCHECK" in final_stage
    assert 'ENTRYPOINT ["appointments"]' in final_stage
    assert "gcc" not in final_stage
    assert "build-essential" not in final_stage
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'"appointments=={version}"' in final_stage


def test_compose_file_matches_the_compose_spec() -> None:
    done = run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_expiry_in_exactly_one_place() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["api"]["environment"]["APPOINTMENTS_SWEEP_INTERVAL_SECONDS"] == "0"
    assert services["sweeper"]["command"] == ["sweeper"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["db"]["healthcheck"]
    assert "pgdata" in yaml.safe_load((ROOT / "compose.yaml").read_text())["volumes"]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    done = run(str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(manifest))
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_set_has_every_piece() -> None:
    kinds = {yaml.safe_load(path.read_text())["kind"]: path for path in MANIFESTS}
    assert set(kinds) >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    deployment = yaml.safe_load(kinds["Deployment"].read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    cronjob = yaml.safe_load(kinds["CronJob"].read_text())
    assert cronjob["spec"]["schedule"] == "* * * * *"
    job_container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert job_container["args"] == ["expire"]
    config = yaml.safe_load(kinds["ConfigMap"].read_text())["data"]
    assert config["APPOINTMENTS_SWEEP_INTERVAL_SECONDS"] == "0"
