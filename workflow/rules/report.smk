# Aggregate every run's metrics.json (not MLflow) into the comparison tables.


rule aggregate:
    input:
        [f"{run_dir(t, m, s)}/metrics.json" for t, m, s in RUNS],
    output:
        TABLES,
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "{FINEBENCH} aggregate {input} --out {RESULTS}/tables > {log} 2>&1"
