# Tuning (config `tuning:`; finebench.tuning): per tuned (task, model), its trials — values drawn up front, so the DAG
# is static — trained in groups of tuning.runs_per_job per job (one process: the start-up paid once per group), on
# the validation split only; then the selection of the best trial, which files the MLflow parent run and writes the
# selected.json the final seed runs read (train --tuned). An unchanged config reruns nothing; a changed space or
# budget reruns that model's trials and final runs only.


rule tune:
    input:
        data=train_data,
        experiment=ancient(EXPERIMENT_FILE),
        hub=hub_marker,  # prefetched pretrained weights (workflow/rules/hf.smk); none for the other models
    output:
        f"{RESULTS}/tune/{{task}}/{{model}}/trials{{chunk}}.json",
    log:
        f"{RESULTS}/logs/tune/{{task}}/{{model}}/trials{{chunk}}.log",
    wildcard_constraints:
        chunk="[0-9]+",
    threads: CFG["threads"]
    resources:
        gpu=gpus_per_train_job,
    params:
        specs=trial_chunk_json,
        root=lambda w: f"{RESULTS}/tune/{w.task}/{w.model}",
        device=CFG["device"],
        hub_env=hub_env,  # hubs offline; the prefetched cache
    shell:
        "{params.hub_env}python -m finebench train-trials --specs {params.specs:q} --data {input.data} "
        "--experiment-file {input.experiment} --out-root {params.root} --out {output} --device {params.device} "
        "--threads {threads} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"


localrules:
    select_trials,


rule select_trials:
    input:
        chunks=trial_chunk_files,
        experiment=ancient(EXPERIMENT_FILE),
    output:
        f"{RESULTS}/tune/{{task}}/{{model}}/selected.json",
    log:
        f"{RESULTS}/logs/tune/{{task}}/{{model}}/select.log",
    params:
        identity=tuning_identity_json,
    shell:
        "python -m finebench select-trials {input.chunks} --identity {params.identity:q} "
        "--experiment-file {input.experiment} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"
