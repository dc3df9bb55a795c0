# MLflow store + experiment are created once, locally, before any training job; then one job per (task, model, seed).
from finebench.cluster import cluster_executor, train_gpus

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
        data=f"{RESULTS}/data/{{task}}",
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
        # GPUs per job (finebench.cluster: from device, gpus_per_job, local or cluster executor); locally
        # `--resources gpu=N` runs at most N jobs at once, on Slurm it is `sbatch --gpus=N`
        gpu=lambda wildcards: train_gpus(CFG, cluster=cluster_executor(workflow)),
    log:
        f"{RESULTS}/logs/train/{{task}}/{{model}}/seed{{seed}}.log",
    shell:
        "{FINEBENCH} train --spec {params.spec:q} --data {input.data} --experiment-file {input.experiment} "
        "--out {params.out} --device {params.device} --threads {threads} --no-progress > {log} 2>&1"
