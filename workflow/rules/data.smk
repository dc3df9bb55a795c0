# Real datasets are downloaded once by a local rule (cluster compute nodes never download), verified, extracted;
# then each task's dataset is prepared once into results/data/{task}/ (atomic: a half-built folder is never used).

localrules:
    download,


rule download:
    output:
        f"{CFG['download']['cache']}/{{dataset}}.ready.json",
    params:
        cache=CFG["download"]["cache"],
        mirror=CFG["download"]["mirror"] or "",
        lock=f"--lock {CFG['download']['lock']}" if CFG["download"]["lock"] else "",
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    shell:
        "{FINEBENCH} download --dataset {wildcards.dataset} --cache {params.cache} --mirror {params.mirror:q} "
        "{params.lock} --out {output} > {log} 2>&1 || {FINEBENCH} job-failed $? {log}"


def download_marker(wildcards):
    if fbconfig.needs_download(CFG, wildcards.task):
        return f"{CFG['download']['cache']}/{CFG['tasks'][wildcards.task]['dataset']}.ready.json"
    return []


rule prepare_data:
    input:
        download=download_marker,
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    params:
        dataset=lambda w: CFG["tasks"][w.task]["dataset"],
        options=task_options_json,
        download=lambda w, input: f"--download {input.download}" if input.download else "",
    threads: lambda w: fbdata.DATASETS[CFG["tasks"][w.task]["dataset"]].prepare_threads
    log:
        f"{RESULTS}/logs/prepare/{{task}}.log",
    shell:
        "{FINEBENCH} prepare --task {wildcards.task} --dataset {params.dataset} --options {params.options:q} "
        "{params.download} --out {output} > {log} 2>&1 || {FINEBENCH} job-failed $? {log}"
