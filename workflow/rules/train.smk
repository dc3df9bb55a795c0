# MLflow store + experiment are created once, locally, before any training job; then one job per (task, model, seed).
# experiment.json is bookkeeping (the experiment's id), so it is ancient(): re-creating or touching it never makes a
# finished run stale.


localrules:
    init_tracking,


rule init_tracking:
    output:
        EXPERIMENT_FILE,
    log:
        f"{RESULTS}/logs/init_tracking.log",
    params:
        uri=CFG["tracking_uri"],
        experiment=CFG["experiment"],
        artifact_root=f"{RESULTS}/mlartifacts",
    shell:
        "python -m finebench init-tracking --tracking-uri {params.uri:q} --experiment {params.experiment:q} "
        "--artifact-root {params.artifact_root} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"


rule train:
    input:
        data=train_data,  # the prepared task, or its hf: form (workflow/rules/hf.smk)
        experiment=ancient(EXPERIMENT_FILE),
    output:
        metrics=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/metrics.json",
        history=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/history.csv",
        confusion=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/confusion.csv",
    log:
        f"{RESULTS}/logs/train/{{task}}/{{model}}/seed{{seed}}.log",
    wildcard_constraints:
        task=task_pattern("classification"),
    threads: CFG["threads"]
    resources:
        # GPUs per job (finebench.cluster: from device, gpus_per_job, local or cluster executor); locally
        # `--resources gpu=N` runs at most N jobs at once, on Slurm it is `sbatch --gpus=N`
        gpu=gpus_per_train_job,
    params:
        spec=spec_json,
        out=lambda w, output: os.path.dirname(output.metrics),
        device=CFG["device"],
    shell:
        "python -m finebench train --spec {params.spec:q} --data {input.data} --experiment-file {input.experiment} "
        "--out {params.out} --device {params.device} --threads {threads} --no-progress > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"


# Super-resolution tasks: the same command; per_image.csv and examples.npz instead of the confusion matrix.
rule train_sr:
    input:
        data=f"{RESULTS}/data/{{task}}",
        experiment=ancient(EXPERIMENT_FILE),
    output:
        metrics=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/metrics.json",
        history=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/history.csv",
        per_image=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/per_image.csv",
        examples=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/examples.npz",
    log:
        f"{RESULTS}/logs/train/{{task}}/{{model}}/seed{{seed}}.log",
    wildcard_constraints:
        task=task_pattern("superres"),
    threads: CFG["threads"]
    resources:
        # GPUs per job (finebench.cluster: from device, gpus_per_job, local or cluster executor); locally
        # `--resources gpu=N` runs at most N jobs at once, on Slurm it is `sbatch --gpus=N`
        gpu=gpus_per_train_job,
    params:
        spec=spec_json,
        out=lambda w, output: os.path.dirname(output.metrics),
        device=CFG["device"],
    shell:
        "python -m finebench train --spec {params.spec:q} --data {input.data} --experiment-file {input.experiment} "
        "--out {params.out} --device {params.device} --threads {threads} --no-progress > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"
