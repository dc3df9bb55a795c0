# Pretrained Hugging Face models (arch: hf:<model id>, src/finebench/models/hf.py). Text: the prepared task's raw texts
# are tokenised once per (task, tokenizer) with the model's own tokenizer into results/tokens/{task}/{tokenizer}/;
# the tokenizer's files in pretrained_dir are inputs, so a changed tokenizer retokenises. Speech: the prepared task's
# raw waveforms, seen as the model input in results/waveform/{task}/. Only hf: models' training jobs read these.
# Helpers (hf_tokenize_jobs, train_data) are in common.smk.


rule tokenize:
    input:
        data=f"{RESULTS}/data/{{task}}",
        tokenizer=lambda w: fb_hf_tokens.tokenizer_files(HF_TOKENIZE[(w.task, w.tokenizer)][1]),
    output:
        directory(f"{RESULTS}/tokens/{{task}}/{{tokenizer}}"),
    log:
        f"{RESULTS}/logs/tokenize/{{task}}/{{tokenizer}}.log",
    wildcard_constraints:
        tokenizer="[A-Za-z0-9_.-]+",
    params:
        model=lambda w: HF_TOKENIZE[(w.task, w.tokenizer)][0],
        options=lambda w: json.dumps(HF_TOKENIZE[(w.task, w.tokenizer)][1], sort_keys=True),
    shell:
        "python -m finebench.data.hf_tokens tokenize --data {input.data} --model {params.model:q} "
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
