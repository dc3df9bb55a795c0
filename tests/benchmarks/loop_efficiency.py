"""Benchmark: does the training loop keep the model busy? The trainer's samples/s against a model-only loop.

    .venv/bin/python tests/benchmarks/loop_efficiency.py                          # the embedded suite, CPU
    .venv/bin/python tests/benchmarks/loop_efficiency.py --config config/benchmark.yaml --modality vision \
        --device cuda --steps 50                                                  # the real vision models, one GPU
    ... --training precision=fp32 channels_last=true compile=true   # the same with other training keys

For every (task, model) of the config, in this process:
1. **trainer**: ``train_one_epoch`` of the real trainer (finebench.train: the loader thread, device-side transforms,
   autocast, optimizer and schedule) over ``--steps`` batches, after one warm-up epoch — samples/s and the share of
   the time spent waiting for input (``data_seconds``);
2. **model only**: the same batches, already transformed and in device memory, through forward + backward +
   optimizer step in a bare loop — the ceiling the trainer can reach.
Ratio = trainer / model-only (targets: >= 0.95 on CPU for the embedded suite, >= 0.90 on one GPU for the
vision models of benchmark.yaml at 224 px). Data: the task's prepared folder under ``--prepared`` when it exists
(``results/data/{task}`` after ``make run``), else — for datasets with official counts — synthetic data of the real
shape and class count (content does not change speed), else the task is prepared into ``--work`` (embedded
datasets are generated offline). Pretrained weights are switched off (same architecture, same speed). Measures and
prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from finebench import config as fbconfig
from finebench import data as fbdata

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_time import input_info, write_prepared  # noqa: E402  (a sibling script)


def data_dir_for(cfg: dict, task: str, prepared: Path, work: Path, batch: int, steps: int) -> Path:
    if (prepared / task / "manifest.json").is_file():
        return prepared / task
    source = fbdata.DATASETS[cfg["tasks"][task]["dataset"]]
    out = work / "data" / task
    if (out / "manifest.json").is_file():
        return out
    options = fbconfig.task_options(cfg, task)
    if source.official:
        n = {"train": batch * (steps + 2), "val": batch, "test": batch}
        write_prepared(out, input_info(source, options), source.official["classes"], n)
    else:
        print(f"preparing {task} ({source.name}) into {out} ...", file=sys.stderr, flush=True)
        fbdata.prepare_task(task, source.name, options, out)
    return out


def measure_pair(spec: dict, data_dir: Path, device: str, threads: int, steps: int) -> dict:
    import torch

    from finebench.train import set_up, train_one_epoch

    spec = {**spec, "training": {**spec["training"], "max_train_batches": steps, "epochs": 2}}
    job = set_up(spec, data_dir, device, threads)
    train_one_epoch(job, 1, False)  # warm-up: allocator, cuDNN autotuning, compile
    tr = train_one_epoch(job, 2, False)
    trainer_sps = tr["samples"] / tr["train_seconds"]

    batches = list(job.loader("train", train=True))  # the same pipeline's output, now resident on the device
    model, opt, loss_fn, t = job.model, job.optimizer, job.objective.loss, job.spec["training"]

    def step(x, y):
        with job.autocast():
            loss = loss_fn(model(x), y, t)
        opt.zero_grad(set_to_none=True)
        job.scaler.scale(loss).backward()  # as the trainer: fp16 scales its loss, other precisions pass through
        job.scaler.step(opt)
        job.scaler.update()

    model.train()
    for x, y in batches[:2]:
        step(x, y)
    if job.dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for x, y in batches:
        step(x, y)
    if job.dev.type == "cuda":
        torch.cuda.synchronize()
    model_sps = sum(len(y) for _, y in batches) / (time.perf_counter() - t0)
    return {"device": job.dev.type, "precision": job.precision, "batch": t["batch_size"], "steps": len(batches),
            "trainer_samples_per_s": round(trainer_sps, 1), "model_only_samples_per_s": round(model_sps, 1),
            "ratio": round(trainer_sps / model_sps, 3),
            "data_wait_share": round(tr["data_seconds"] / tr["train_seconds"], 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--modality", choices=["vision", "text", "speech"], help="only tasks of this modality")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--models", nargs="*")
    ap.add_argument("--steps", type=int, default=30, help="measured training batches")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="torch threads (default: the config's)")
    ap.add_argument("--prepared", default="results/data", help="prepared task folders to use when present")
    ap.add_argument("--work", default="/tmp/finebench-loop-efficiency")
    ap.add_argument("--out", help="also write the table as CSV here")
    ap.add_argument("--training", nargs="*", default=[], metavar="KEY=VALUE",
                    help="training keys to override for every run, e.g. precision=fp32 channels_last=true compile=true")
    args = ap.parse_args()
    overrides = {}
    for item in args.training:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--training {item!r}: expected KEY=VALUE")
        if key in ("epochs", "max_train_batches"):
            ap.error(f"--training {key}: set by the benchmark itself (one warm-up epoch, then --steps batches)")
        overrides[key] = fbconfig.load_yaml(value)  # read as a config's values are (1e-3 is a number)

    cfg = fbconfig.load(args.config)
    if overrides:  # checked against the schema of a config's training: section
        import jsonschema

        schema = yaml.safe_load(fbconfig.SCHEMA_PATH.read_text())
        validator = jsonschema.Draft202012Validator({**schema["$defs"]["training"], "$defs": schema["$defs"]})
        for error in validator.iter_errors(overrides):
            ap.error(f"--training{' ' + '.'.join(map(str, error.path)) if error.path else ''}: {error.message}")
    rows = []
    for task in args.tasks or list(cfg["tasks"]):
        if args.modality and fbconfig.task_modality_of(cfg, task) != args.modality:
            continue
        for model in fbconfig.task_models(cfg, task):
            if args.models and model not in args.models:
                continue
            spec = fbconfig.resolve_spec(cfg, task, model, 0)
            spec["training"].update(overrides)  # over the task's and the model's own training keys too
            spec["model_kwargs"] = {k: v for k, v in spec["model_kwargs"].items()
                                    if k not in ("pretrained", "pretrained_file")}
            data_dir = data_dir_for(cfg, task, Path(args.prepared), Path(args.work), spec["training"]["batch_size"],
                                    args.steps)
            r = {"task": task, "model": model, **({"training": " ".join(args.training)} if overrides else {}),
                 **measure_pair(spec, data_dir, args.device, args.threads or cfg["threads"],
                                                              args.steps)}
            rows.append(r)
            print(f"{task:22s} {model:16s} trainer {r['trainer_samples_per_s']:9.1f}/s  model-only "
                  f"{r['model_only_samples_per_s']:9.1f}/s  ratio {r['ratio']:.3f}  "
                  f"data wait {100 * r['data_wait_share']:.1f} %",
                  flush=True)
    table = pd.DataFrame(rows)
    if table.empty:
        print("no (task, model) pairs selected", file=sys.stderr)
        return 1
    print()
    print(table.to_string(index=False))
    print(f"\nmedian ratio {table['ratio'].median():.3f}, min {table['ratio'].min():.3f} "
          f"({table.loc[table['ratio'].idxmin(), 'task']}/{table.loc[table['ratio'].idxmin(), 'model']})")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
