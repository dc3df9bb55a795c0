# Pretrained Hugging Face models (arch: hf:<model id>, src/finebench/models/hf.py). Text: the prepared task's raw texts
# are tokenised once per (task, tokenizer) with the model's own tokenizer into results/tokens/{task}/{tokenizer}/;
# the tokenizer's files in pretrained_dir are inputs, so a changed tokenizer retokenises. Speech: the prepared task's
# raw waveforms, seen as the model input in results/waveform/{task}/. Only hf: models' training jobs read these.
# Pretrained weights from the hubs (hf: models without pretrained_dir, timm models with pretrained: true) are fetched
# once by prefetch_weights, a local rule like the dataset downloads (compute nodes may have no network), one job per
# weight, into {download.cache}/hub; the jobs that read them (train, tune, tokenize) wait for their weight's marker and
# run with the hubs offline (finebench.prefetch). Helpers (hf_tokenize_jobs, train_data, hub_marker, hub_env) are in
# common.smk.


localrules:
    prefetch_weights,


rule prefetch_weights:
    output:
        fbprefetch.marker_path(CFG["download"]["cache"], "{weights}"),
    log:
        f"{RESULTS}/logs/prefetch_weights/{{weights}}.log",
    wildcard_constraints:
        weights="[A-Za-z0-9_.-]+",
    params:
        weights=hub_weight_json,
        cache=lambda w, output: os.path.dirname(output[0]),
    shell:
        "python -m finebench prefetch --weights {params.weights:q} --hub-cache {params.cache} --out {output} "
        "> {log} 2>&1 || python -m finebench job-failed $? {log}"


rule tokenize:
    input:
        data=f"{RESULTS}/data/{{task}}",
        tokenizer=lambda w: fb_hf_tokens.tokenizer_files(HF_TOKENIZE[(w.task, w.tokenizer)][1]),
        hub=hub_marker,  # a hub model's prefetched tokenizer; none with pretrained_dir
    output:
        directory(f"{RESULTS}/tokens/{{task}}/{{tokenizer}}"),
    log:
        f"{RESULTS}/logs/tokenize/{{task}}/{{tokenizer}}.log",
    wildcard_constraints:
        tokenizer="[A-Za-z0-9_.-]+",
    params:
        model=lambda w: HF_TOKENIZE[(w.task, w.tokenizer)][0],
        options=lambda w: json.dumps(HF_TOKENIZE[(w.task, w.tokenizer)][1], sort_keys=True),
        hub_env=hub_env,  # hubs offline; the prefetched cache
    shell:
        "{params.hub_env}python -m finebench.data.hf_tokens tokenize --data {input.data} --model {params.model:q} "
        "--options {params.options:q} --out {output} > {log} 2>&1 || python -m finebench job-failed $? {log}"


localrules:
    waveform_view,


rule waveform_view:
    input:
        data=f"{RESULTS}/data/{{task}}",
    output:
        directory(f"{RESULTS}/waveform/{{task}}"),
    log:
        f"{RESULTS}/logs/waveform_view/{{task}}.log",
    shell:
        "python -m finebench.data.hf_tokens waveform-view --data {input.data} --out {output} > {log} 2>&1 "
        "|| python -m finebench job-failed $? {log}"
