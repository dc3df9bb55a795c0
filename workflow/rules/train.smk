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


# One training rule per task type (finebench.tasks), named train_<type>: the same command, the outputs its task type
# declares (TaskType.run_files: classification's confusion.csv, super-resolution's per_image.csv and examples.npz).
# seeds_per_job > 1: the same rule trains a group of seeds of a (task, model) in one process (train-runs); its output
# is the group's list of metrics, each run's files are written in its own folder as for one seed.
for _task_type in TASK_TYPES.values():
    if not GROUPED:

        rule:
            name:
                _task_type.rule
            input:
                data=train_data,  # the prepared task, or its hf: form (workflow/rules/hf.smk)
                experiment=ancient(EXPERIMENT_FILE),
                tuned=selected_file,  # a tuned model's chosen values (workflow/rules/tune.smk); none when hand-set
                hub=hub_marker,  # prefetched pretrained weights (workflow/rules/hf.smk); none for the other models
            output:
                **{
                    name.replace(".", "_"): f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/{name}"
                    for name in _task_type.run_files
                },
                metrics=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/metrics.json",
                history=f"{RESULTS}/runs/{{task}}/{{model}}/seed{{seed}}/history.csv",
            log:
                f"{RESULTS}/logs/train/{{task}}/{{model}}/seed{{seed}}.log",
            wildcard_constraints:
                task=task_pattern(_task_type.name),
            threads: CFG["threads"]
            resources:
                # GPUs per job (finebench.cluster: from device, gpus_per_job, local or cluster executor); locally
                # `--resources gpu=N` runs at most N jobs at once, on Slurm it is `sbatch --gpus=N`
                gpu=gpus_per_train_job,
            params:
                spec=spec_json,
                out=lambda w, output: os.path.dirname(output.metrics),
                device=CFG["device"],
                tuned=lambda w, input: f"--tuned {input.tuned}" if input.tuned else "",
                hub_env=hub_env,  # hubs offline; the prefetched cache
            shell:
                "{params.hub_env}python -m finebench train --spec {params.spec:q} --data {input.data} "
                "--experiment-file {input.experiment} --out {params.out} --device {params.device} --threads {threads} "
                "--no-progress {params.tuned} > {log} 2>&1 "
                "|| python -m finebench job-failed $? {log}"

    else:

        rule:
            name:
                _task_type.rule
            input:
                data=train_data,
                experiment=ancient(EXPERIMENT_FILE),
                tuned=selected_file,
                hub=hub_marker,
            output:
                f"{RESULTS}/runs/{{task}}/{{model}}/seeds{{group}}.json",
            log:
                f"{RESULTS}/logs/train/{{task}}/{{model}}/seeds{{group}}.log",
            wildcard_constraints:
                task=task_pattern(_task_type.name),
                group="[0-9]+",
            threads: CFG["threads"]
            resources:
                gpu=gpus_per_train_job,
            params:
                specs=seed_group_json,
                root=lambda w: f"{RESULTS}/runs/{w.task}/{w.model}",
                run_files=" ".join(_task_type.run_files),
                device=CFG["device"],
                tuned=lambda w, input: f"--tuned {input.tuned}" if input.tuned else "",
                hub_env=hub_env,
            shell:
                "{params.hub_env}python -m finebench train-runs --specs {params.specs:q} --data {input.data} "
                "--experiment-file {input.experiment} --out-root {params.root} --out {output} "
                "--run-files {params.run_files} --device {params.device} --threads {threads} {params.tuned} "
                "> {log} 2>&1 || python -m finebench job-failed $? {log}"
