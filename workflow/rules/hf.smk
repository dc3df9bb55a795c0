# Pretrained Hugging Face models (arch: hf:<model id>, src/finebench/models/hf.py). Text: the prepared task's raw texts
# are tokenised once per (task, tokenizer) with the model's own tokenizer into results/tokens/{task}/{tokenizer}/;
# the tokenizer's files in pretrained_dir are inputs, so a changed tokenizer retokenises. Speech: the prepared task's
# raw waveforms, seen as the model input in results/waveform/{task}/. Only hf: models' training jobs read these.
from finebench.data import hf_tokens as fb_hf_tokens
from finebench.errors import FinebenchError
from finebench.models.hf import HF_PREFIX, source_of

HF_TOKENS_MODULE = f"{sys.executable} -m finebench.data.hf_tokens"
HF_OPTION_KEYS = ("pretrained_dir", "revision", "max_length")


def hf_options(model):
    m = CFG["models"][model]
    return {k: m[k] for k in HF_OPTION_KEYS if m.get(k) is not None}


def hf_tokenize_jobs():
    """{(task, tokenizer slug): (model id, options)} for every hf: text model and every task it runs on. Checked at
    parse time: a pretrained_dir without a model or a tokenizer fails before any job runs."""
    jobs = {}
    for name, m in CFG["models"].items():
        if not m["arch"].startswith(HF_PREFIX):
            continue
        try:
            source_of(m["arch"][len(HF_PREFIX) :], hf_options(name))
            if m["modality"] == "text":
                fb_hf_tokens.tokenizer_files(hf_options(name))
        except FinebenchError as exc:
            raise WorkflowError(f"invalid finebench config — models.{name}.{exc}") from None
    for task, model, _ in RUNS:
        m = CFG["models"][model]
        if m["arch"].startswith(HF_PREFIX) and m["modality"] == "text":
            opts = hf_options(model)
            jobs[(task, fb_hf_tokens.cache_slug(m["arch"][len(HF_PREFIX) :], opts))] = (m["arch"][len(HF_PREFIX) :], opts)
    return jobs


HF_TOKENIZE = hf_tokenize_jobs()


def train_data(wildcards):
    """The train job's --data: the prepared task, or for hf: models its tokenisation (text) or waveform view (speech)."""
    m = CFG["models"][wildcards.model]
    if m["arch"].startswith(HF_PREFIX):
        if m["modality"] == "text":
            slug = fb_hf_tokens.cache_slug(m["arch"][len(HF_PREFIX) :], hf_options(wildcards.model))
            return f"{RESULTS}/tokens/{wildcards.task}/{slug}"
        return f"{RESULTS}/waveform/{wildcards.task}"
    return f"{RESULTS}/data/{wildcards.task}"


rule tokenize:
    input:
        data=f"{RESULTS}/data/{{task}}",
        tokenizer=lambda w: fb_hf_tokens.tokenizer_files(HF_TOKENIZE[(w.task, w.tokenizer)][1]),
    output:
        directory(f"{RESULTS}/tokens/{{task}}/{{tokenizer}}"),
    wildcard_constraints:
        tokenizer="[A-Za-z0-9_.-]+",
    params:
        model=lambda w: HF_TOKENIZE[(w.task, w.tokenizer)][0],
        options=lambda w: json.dumps(HF_TOKENIZE[(w.task, w.tokenizer)][1], sort_keys=True),
    log:
        f"{RESULTS}/logs/tokenize/{{task}}/{{tokenizer}}.log",
    shell:
        "{HF_TOKENS_MODULE} tokenize --data {input.data} --model {params.model:q} --options {params.options:q} "
        "--out {output} > {log} 2>&1"


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
        "{HF_TOKENS_MODULE} waveform-view --data {input.data} --out {output} > {log} 2>&1"
