# Real datasets are downloaded once by a local rule (cluster compute nodes never download), verified, extracted;
# then each task's dataset is prepared once into results/data/{task}/ (atomic: a half-built folder is never used).


localrules:
    download,


rule download:
    output:
        f"{CFG['download']['cache']}/{{dataset}}.ready.json",
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    params:
        cache=lambda w, output: os.path.dirname(output[0]),
        mirror=CFG["download"]["mirror"] or "",
        lock=f"--lock {CFG['download']['lock']}" if CFG["download"]["lock"] else "",
    shell:
        "python -m finebench download --dataset {wildcards.dataset} --cache {params.cache} "
        "--mirror {params.mirror:q} {params.lock} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"


rule prepare_data:
    input:
        download=download_marker,
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    log:
        f"{RESULTS}/logs/prepare/{{task}}.log",
    threads: lambda w: fbdata.DATASETS[CFG["tasks"][w.task]["dataset"]].prepare_threads
    params:
        dataset=lambda w: CFG["tasks"][w.task]["dataset"],
        options=task_options_json,
        download=lambda w, input: f"--download {input.download}" if input.download else "",
    shell:
        "python -m finebench prepare --task {wildcards.task} --dataset {params.dataset} "
        "--options {params.options:q} {params.download} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"
