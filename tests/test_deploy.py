"""Deployment files, checked statically (no Docker engine or cluster runs here)."""

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
CNPG = ROOT / "deploy" / "k8s" / "cnpg"
CNPG_SCHEMA = CNPG / "schema.json"


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
    cronjobs = {
        job["metadata"]["name"]: job
        for job in (load(path) for path in MANIFESTS)
        if job["kind"] == "CronJob"
    }
    expire, roll = cronjobs["appointments-expire"], cronjobs["appointments-roll"]
    assert expire["spec"]["schedule"] == "* * * * *"
    assert roll["spec"]["schedule"] == "7 * * * *"  # hourly: each zone's new day
    for job, args in ((expire, ["expire"]), (roll, ["roll"])):
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == args
    config = yaml.safe_load(kinds["ConfigMap"].read_text())["data"]
    assert config["APPOINTMENTS_SWEEP_INTERVAL_SECONDS"] == "0"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def check_cnpg(*paths: Path) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "check-jsonschema"), "--schemafile", str(CNPG_SCHEMA), *map(str, paths))


def test_cnpg_schema_is_a_valid_json_schema() -> None:
    done = run(str(BIN / "check-jsonschema"), "--check-metaschema", str(CNPG_SCHEMA))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["cluster.yaml", "pooler.yaml"])
def test_cnpg_manifest_matches_the_operator_schema(name: str) -> None:
    done = check_cnpg(CNPG / name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cnpg_owner_secret_is_a_valid_kubernetes_secret() -> None:
    done = run(
        str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(CNPG / "owner-secret.yaml")
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "instance"), 3),  # misspelt field: the API server would prune it
        (("spec", "instances"), 0),
        (("spec", "postgresql", "synchronous", "number"), 0),
        (("spec", "postgresql", "synchronous", "method"), "all"),
        (("spec", "storage", "size"), "20 gigs"),
        (("spec", "postgresql", "parameters", "max_connections"), 400),
    ],
    ids=lambda part: "-".join(part) if isinstance(part, tuple) else str(part),
)
def test_cnpg_schema_refuses_a_broken_cluster(
    tmp_path: Path, path: tuple[str, ...], value: object
) -> None:
    cluster = load(CNPG / "cluster.yaml")
    node = cluster
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    broken = tmp_path / "cluster.yaml"
    broken.write_text(yaml.safe_dump(cluster))
    assert check_cnpg(broken).returncode != 0


def test_cnpg_cluster_replicates_synchronously_and_the_service_uses_it() -> None:
    cluster = load(CNPG / "cluster.yaml")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    assert spec["imageName"].endswith(":15")
    name = cluster["metadata"]["name"]
    initdb = spec["bootstrap"]["initdb"]
    owner = load(CNPG / "owner-secret.yaml")
    assert owner["metadata"]["name"] == initdb["secret"]["name"]
    assert owner["type"] == "kubernetes.io/basic-auth"
    assert owner["stringData"]["username"] == initdb["owner"]
    urls = load(ROOT / "deploy" / "k8s" / "secret.yaml")["stringData"]
    for key, service in [
        ("APPOINTMENTS_DATABASE_URL", f"{name}-rw"),
        ("APPOINTMENTS_DATABASE_READ_URL", f"{name}-ro"),
    ]:
        url = urlsplit(urls[key])
        assert (url.hostname, url.port, url.path) == (service, 5432, f"/{initdb['database']}")
        assert (url.username, url.password) == (
            owner["stringData"]["username"],
            owner["stringData"]["password"],
        )
    pooler = load(CNPG / "pooler.yaml")
    assert pooler["spec"]["cluster"]["name"] == name
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"


def test_cnpg_cluster_takes_every_api_connection() -> None:
    """max_connections covers the HPA's largest fleet at full pools, with room left."""
    parameters = load(CNPG / "cluster.yaml")["spec"]["postgresql"]["parameters"]
    hpa = load(ROOT / "deploy" / "k8s" / "hpa.yaml")["spec"]
    config = load(ROOT / "deploy" / "k8s" / "configmap.yaml")["data"]
    deployment = load(ROOT / "deploy" / "k8s" / "deployment.yaml")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    workers = int(args[args.index("--workers") + 1])
    # One pool per worker (`connections`), shared by transactions and statements.
    pool = int(config["APPOINTMENTS_DB_POOL_SIZE"]) + int(config["APPOINTMENTS_DB_MAX_OVERFLOW"])
    assert int(parameters["max_connections"]) >= hpa["maxReplicas"] * workers * pool + 20
