"""Schemathesis, driven by the service's own OpenAPI document, against a live server.

With an admin token, so every operation is reachable. Checks: no 5xx, every
status and content type declared, every body matching its declared schema.
The seed is fixed so CI is reproducible; set APPOINTMENTS_FUZZ_SEED to explore.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import bearer
from tests.live_server import live_server

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
MIN_CASES = 1000


# The stateful phase follows the document's links from provider to slot to reservation;
# a reserve also needs a client the links cannot carry (they start from one answer),
# so one real client is named here. Its hold limit is lifted for the run.
CONFIG = """
[phases.stateful]
# Follow the declared links every time rather than learning to avoid those that
# met a 4xx early (which are most of them while ids are still random).
link-calibration = false
# Only the document's own links (67), not the ~2,600 schemathesis infers from names,
# and longer scenarios: without these, 12-15 of the 67 were followed in a run; with
# them, about 30.
inference.algorithms = []
max-steps = 20

[[operations]]
include-name = "POST /clients/{{client_id}}/reserve"
parameters = {{ client_id = "{client_id}" }}
"""


@pytest.mark.live
def test_generated_requests_never_break_the_contract(database_url: str, tmp_path: Path) -> None:
    seed = os.environ.get("APPOINTMENTS_FUZZ_SEED", "20261124")
    admin = bearer(Role.ADMIN, "fuzzer")
    with live_server(database_url, workers=2, max_holds_per_client="1000000") as base:
        client = httpx.post(
            f"{base}/clients", json={"name": "Fuzz", "email": "fuzz@example.com"}, headers=admin
        ).json()
        (tmp_path / "schemathesis.toml").write_text(CONFIG.format(client_id=client["id"]))
        done = _schemathesis(base, admin, seed, tmp_path, "examples,fuzzing,stateful", "2")
        # The coverage phase (boundary and type-violation values for every parameter)
        # on one worker: Hypothesis' lambda-source cache is not thread-safe there. On
        # PostgreSQL only, the production database: its cases are fixed, not random,
        # and running them twice cost the suite half a minute.
        coverage = None
        if database_url.startswith("postgresql"):
            coverage = _schemathesis(base, admin, seed, tmp_path, "coverage", "1")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-2000:]
    assert int(generated.group(1)) >= MIN_CASES, output[-2000:]
    if coverage is not None:
        covered = coverage.stdout + coverage.stderr
        assert coverage.returncode == 0, covered[-6000:]


def _schemathesis(
    base: str, admin: dict[str, str], seed: str, cwd: Path, phases: str, workers: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            phases,
            "--max-examples",
            "50",
            "--seed",
            seed,
            "--workers",
            workers,
            "--request-timeout",
            "30",
            "--header",
            f"Authorization: {admin['Authorization']}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
