"""Draw docs/benchmarks-*.png from bench/results/latest.json (matplotlib, headless)."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"


def main() -> None:
    figures = json.loads(RESULTS.read_text())
    listing = {int(k): v for k, v in figures["listing"].items() if k.isdigit()}
    sizes = sorted(listing)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(sizes, [listing[s]["p50_ms"] for s in sizes], marker="o", label="p50")
    ax.plot(sizes, [listing[s]["p99_ms"] for s in sizes], marker="o", label="p99")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("slots in the table")
    ax.set_ylabel("ms per page of 100")
    ax.set_title("Listing bookable slots: latency vs table size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "benchmarks-listing.png", dpi=110)

    reserve = figures["reserve"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(
        ["pgbench, same SQL", "service over HTTP"], [reserve["pgbench_tps"], reserve["http_rps"]]
    )
    ax.set_xlabel("reserves per second")
    ax.set_title(f"Reserve throughput (ratio {reserve['ratio']})")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "benchmarks-reserve.png", dpi=110)
    print("plots written to docs/")


if __name__ == "__main__":
    main()
