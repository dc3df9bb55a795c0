# MLflow store + experiment are created once, locally, before any training job; then one job per (task, model, seed).

localrules:
    init_tracking,


rule init_tracking:
    output:
        EXPERIMENT_FILE,
    params:
        uri=CFG["tracking_uri"],
        experiment=CFG["experiment"],
    log:
        f"{RESULTS}/logs/init_tracking.log",
    shell:
        "{FINEBENCH} init-tracking --tracking-uri {params.uri:q} --experiment {params.experiment:q} "
        "--artifact-root {RESULTS}/mlartifacts --out {output} > {log} 2>&1"


rule train:
    input:
        data=train_data,  # the prepared task, or its hf: form (workflow/rules/hf.smk)
        experiment=EXPERIMENT_FILE,
    output:
        metrics=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/metrics.json",
        history=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/history.csv",
        confusion=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/confusion.csv",
    params:
        spec=spec_json,
        out=lambda w: run_dir(w.task, w.model, w.seed),
        device=CFG["device"],
    threads: CFG["threads"]
    resources:
        gpu=1,  # unlimited unless the command line caps it: `--resources gpu=1` runs one job per GPU
    log:
        f"{RESULTS}/logs/train/{{task}}/{{model}}/seed{{seed}}.log",
    shell:
        "{FINEBENCH} train --spec {params.spec:q} --data {input.data} --experiment-file {input.experiment} "
        "--out {params.out} --device {params.device} --threads {threads} --no-progress > {log} 2>&1"
