# finebench: CNN vs RNN vs Transformer on fine-grained vision / text / speech tasks, tracked in MLflow.
#   snakemake --cores all                                  # the embedded suite (config/config.yaml)
#   snakemake --cores all --configfile config/smoke.yaml   # tiny, every stage
# All logic lives in src/finebench; the rules only call `python -m finebench ...`.
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded suite is the default; a --configfile on the command line replaces it (Snakemake would otherwise
# deep-merge the two, mixing both suites' tasks and models).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/hf.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.aggregate.output,
        SUMMARY_FILE,
    default_target: True
