# Prepare each task's dataset once into results/data/{task}/ (atomic: a half-built folder is never used).


rule prepare_data:
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    params:
        dataset=lambda w: CFG["tasks"][w.task]["dataset"],
        options=task_options_json,
    log:
        f"{RESULTS}/logs/prepare/{{task}}.log",
    shell:
        "{FINEBENCH} prepare --task {wildcards.task} --dataset {params.dataset} --options {params.options:q} "
        "--out {output} > {log} 2>&1"
