"""The main job as a demo. Until the search pipeline lands: the STS comparison table."""

from __future__ import annotations

from sentsim.cli import main


def run_demo() -> int:
    """Run the demo; return an exit status."""
    from sentsim.settings import data_root

    if not (data_root() / "stsbenchmark" / "sts-test.csv").exists():
        print(
            f"STS-B not found under {data_root().resolve()}: set SENTSIM_DATA; nothing to compare"
        )
        return 0
    return main(["compare", "sts"])
