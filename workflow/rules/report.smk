# Aggregate every run's metrics.json (not MLflow) into tables and plots; then file a summary run per task in MLflow.
# `snakemake --report results/report.html` (make report) collects the annotated outputs with their captions.


rule aggregate:
    input:
        metrics=[f"{run_dir(t, m, s)}/metrics.json" for t, m, s in RUNS],
        references=REFERENCES,
    output:
        leaderboard=report(f"{RESULTS}/tables/leaderboard.html", caption="../report/leaderboard.rst", category="1. Tables", labels={"table": "leaderboard"}),
        families=report(f"{RESULTS}/tables/families.csv", caption="../report/families.rst", category="1. Tables", labels={"table": "families"}),
        family_ranks=report(f"{RESULTS}/tables/family_ranks.csv", caption="../report/ranks.rst", category="1. Tables", labels={"table": "family ranks"}),
        other=[f"{RESULTS}/tables/{name}" for name in TABLE_FILES if name not in ("leaderboard.html", "families.csv", "family_ranks.csv")],
        curves=report(expand(f"{RESULTS}/plots/{{task}}_learning_curves.png", task=CFG["tasks"]), caption="../report/learning_curves.rst", category="2. Learning curves"),
        confusion=report(expand(f"{RESULTS}/plots/{{task}}_confusion_best.png", task=CLS_TASKS), caption="../report/confusion.rst", category="3. Confusion (best model)"),
        sr_examples=report(expand(f"{RESULTS}/plots/{{task}}_sr_examples.png", task=SR_TASKS), caption="../report/sr_examples.rst", category="5. Super-resolution examples"),
        pareto=report(expand(f"{RESULTS}/plots/{{task}}_pareto.png", task=CFG["tasks"]), caption="../report/pareto.rst", category="4. Accuracy vs cost"),
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "{FINEBENCH} aggregate {input.metrics} --out {RESULTS}/tables --plots {RESULTS}/plots "
        "--references {input.references} > {log} 2>&1"


localrules:
    log_summary,


rule log_summary:
    input:
        rules.aggregate.output,
        experiment=EXPERIMENT_FILE,
    output:
        SUMMARY_FILE,
    log:
        f"{RESULTS}/logs/log_summary.log",
    shell:
        "{FINEBENCH} log-summary --experiment-file {input.experiment} --tables {RESULTS}/tables "
        "--plots {RESULTS}/plots --out {output} > {log} 2>&1"
