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


@pytest.mark.live
def test_generated_requests_never_break_the_contract(database_url: str, tmp_path: Path) -> None:
    seed = os.environ.get("APPOINTMENTS_FUZZ_SEED", "20261124")
    with live_server(database_url, workers=2) as base:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "run",
                f"{base}/openapi.json",
                "--checks",
                CHECKS,
                # The coverage phase adds little beyond these and takes minutes
                # (it walks every time zone of the enum); see docs/testing.md.
                "--phases",
                "examples,fuzzing,stateful",
                "--max-examples",
                "70",
                "--seed",
                seed,
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--header",
                f"Authorization: {bearer(Role.ADMIN, 'fuzzer')['Authorization']}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated, output[-2000:]
    assert int(generated.group(1)) >= MIN_CASES, output[-2000:]
