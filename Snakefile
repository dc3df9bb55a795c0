# finebench: CNN vs RNN vs Transformer on fine-grained vision / text / speech tasks, tracked in MLflow.
#   snakemake --cores all                                  # the embedded suite (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml   # tiny, every stage
# All logic lives in src/finebench; the rules only call `python -m finebench ...`.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from finebench.config import SCHEMA_PATH, check_expansion, coerce_numbers, drop_removed, validate_schema
from finebench.cluster import export_gpu_claims
from finebench.errors import ConfigError
from finebench.workdir import discard_finished, stale_lock_hint

min_version("9.0")


# The embedded suite is the default; a --configfile on the command line replaces it: profiles/default (read by a bare
# `snakemake` here, and by `make run`) sets replace-workflow-config, as Snakemake would otherwise deep-merge the two,
# mixing both suites' tasks and models.
configfile: "config/config.yaml"


if "tasks" not in config:
    raise WorkflowError(
        "the config has no `tasks:`. With profiles/default, `--config KEY=VALUE` alone replaces the whole config too: "
        "name the file as well, e.g. --configfile config/config.yaml --config KEY=VALUE"
    )


# A lock left by a killed snakemake stops this run with Snakemake's LockException: say first which command clears it
# (the main process only: jobs parse this file too, on other hosts).
if not (workflow.remote_exec or workflow.subprocess_exec or "--unlock" in sys.argv):
    hint = stale_lock_hint(os.getcwd(), sys.argv[1:])
    if hint:
        print(hint, file=sys.stderr)


# A config whose YAML aliases expand it to millions of values would hang everything below that walks it.
try:
    check_expansion(config, "the config (--configfile)")
except ConfigError as exc:
    raise WorkflowError(f"invalid finebench config — {exc}") from None
# Snakemake reads YAML 1.1 (`lr: 1e-3` becomes a string); finebench reads such numbers as numbers everywhere.
coerce_numbers(config)
# Config files given one after another merge (make tune: config/config.yaml, then config/tune.yaml); a task or model
# set to null by a later one is left out.
drop_removed(config)
validate(config, str(SCHEMA_PATH))  # the schema file's defaults set; then with the task types' training keys:
try:
    validate_schema(config, "the config (--configfile)")
except ConfigError as exc:
    raise WorkflowError(f"invalid finebench config — {exc}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/hf.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/report.smk"


# Every run's files are targets too: Snakemake treats a missing intermediate file whose consumers are up to date as
# fine (like temp()), so a deleted run folder would never be retrained and the tables would still list it.
rule all:
    default_target: True
    input:
        rules.aggregate.input,
        rules.aggregate.output,
        SUMMARY_FILE,


# A local run on a machine with several GPUs: each training job takes the least busy one (finebench.cluster; decided
# here, when the executor is known, so that Slurm jobs never claim).
onstart:
    export_gpu_claims(workflow)


# Once Snakemake has accepted every job's outputs, the runs' finished.pt (kept so that a job marked failed after it
# trained reruns as a re-evaluation, e.g. on Slurm at its time limit) are no longer needed.
onsuccess:
    discard_finished(f"{RESULTS}/runs")
    discard_finished(f"{RESULTS}/tune")
