"""`snakemake --lint` for finebench: every finding fails, except the one the project accepts on purpose —
"Specify a conda environment or container for each rule" (finebench installs with pip into one venv; see the README,
"Lint and format").

    .venv/bin/python tests/lint_workflow.py     # part of `make lint` (beside `snakefmt --check Snakefile workflow/`)
"""

import re
import subprocess
import sys
from pathlib import Path

ACCEPTED = {"Specify a conda environment or container for each rule."}


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    findings = re.findall(r"^    \* (.+?):$", out, re.M)
    other = sorted(set(findings) - ACCEPTED)
    if other or (proc.returncode != 0 and not findings):  # a workflow that does not even load has no findings
        print(out, file=sys.stderr)
        print(f"snakemake --lint: {len(findings)} finding(s), {len(other)} kind(s) not accepted: "
              f"{other or proc.returncode}", file=sys.stderr)
        return 1
    print(f"snakemake --lint: OK ({len(findings)} accepted finding(s): conda/container per rule — see README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
