# Aggregate every run's metrics.json, history.csv and its task type's files (not MLflow) into tables and plots; then
# file a summary run per task in MLflow. `snakemake --report results/report.html` (make report) collects the annotated
# outputs with their captions. The table files are finebench.report.TABLE_FILES, the plots each task type's
# plot_kinds (finebench.tasks); kinds without a caption of their own fall under "more plots".


rule aggregate:
    input:
        # every run's metrics.json, history.csv and its task type's files (confusion matrices, super-resolution
        # crops …), or with seeds_per_job > 1 each training job's seeds<group>.json, written after its runs' files
        runs=run_outputs(),
        tuning=selected_files(),  # with `tuning:`: each tuned model's selection (workflow/rules/tune.smk)
        references=REFERENCES,
    output:
        leaderboard=report(
            table_file("leaderboard.html"),
            caption="../report/leaderboard.rst",
            category="1. Tables",
            labels={"table": "leaderboard"},
        ),
        families=report(
            table_file("families.csv"),
            caption="../report/families.rst",
            category="1. Tables",
            labels={"table": "families"},
        ),
        family_ranks=report(
            table_file("family_ranks.csv"),
            caption="../report/ranks.rst",
            category="1. Tables",
            labels={"table": "family ranks"},
        ),
        summary=report(
            table_file("families_summary.csv"),
            caption="../report/families_summary.rst",
            category="1. Tables",
            labels={"table": "families across tasks"},
        ),
        other=tables_except("leaderboard.html", "families.csv", "family_ranks.csv", "families_summary.csv"),
        curves=report(
            plot_files("learning_curves"),
            caption="../report/learning_curves.rst",
            category="2. Learning curves",
        ),
        confusion=report(
            plot_files("confusion_best"),
            caption="../report/confusion.rst",
            category="3. Confusion (best model)",
        ),
        pareto=report(plot_files("pareto"), caption="../report/pareto.rst", category="4. Accuracy vs cost"),
        sr_examples=report(
            plot_files("sr_examples"),
            caption="../report/sr_examples.rst",
            category="5. Super-resolution examples",
        ),
        more_plots=report(
            plot_files_except("learning_curves", "confusion_best", "pareto", "sr_examples"),
            caption="../report/more_plots.rst",
            category="6. More plots",
        ),
        tuning=tuning_outputs(),  # with `tuning:`: tuning.csv, evp.csv, tuning.md
        evp=report(
            tuning_plots(),
            caption="../report/evp.rst",
            category="7. Tuning: expected best validation score",
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    params:
        metrics=run_files("metrics.json"),
        tables=lambda w, output: os.path.dirname(output.leaderboard),
        plots=lambda w, output: os.path.dirname(output.curves[0]),
        tuning=lambda w, input: f"--tuning {' '.join(input.tuning)}" if input.tuning else "",
    shell:
        "python -m finebench aggregate {params.metrics} --out {params.tables} --plots {params.plots} "
        "--references {input.references} {params.tuning} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"


localrules:
    log_summary,


rule log_summary:
    input:
        rules.aggregate.output,
        leaderboard=rules.aggregate.output.leaderboard,
        curves=rules.aggregate.output.curves,
        experiment=ancient(EXPERIMENT_FILE),
    output:
        SUMMARY_FILE,
    log:
        f"{RESULTS}/logs/log_summary.log",
    params:
        tables=lambda w, input: os.path.dirname(input.leaderboard),
        plots=lambda w, input: os.path.dirname(input.curves[0]),
    shell:
        "python -m finebench log-summary --experiment-file {input.experiment} --tables {params.tables} "
        "--plots {params.plots} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"
