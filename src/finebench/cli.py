"""Thin command-line entry points; the Snakemake rules call exactly these (``python -m finebench <command>``).

    python -m finebench check-config config/config.yaml
    python -m finebench list                       # datasets and architectures the registries know
    python -m finebench prepare --task typefaces --dataset typefaces --options '{}' --out results/data/typefaces
    python -m finebench init-tracking --tracking-uri sqlite:///results/mlflow.db --experiment NAME \
        --artifact-root results/mlartifacts --out results/mlflow/experiment.json
    python -m finebench train --spec "$(cat spec.json)" --data results/data/typefaces \
        --experiment-file results/mlflow/experiment.json --out results/runs/typefaces/resnet18/seed0
    python -m finebench aggregate results/runs/*/*/seed*/metrics.json --out results/tables
    python -m finebench verify-data results/data/*     # prepared arrays against their manifest (sha256 included)
    python -m finebench baseline results/data/wordnet   # TF-IDF + logistic regression reference for a text task
    python -m finebench tracking-server start|status|stop  # shared MLflow server on PostgreSQL (clusters)
    python -m finebench prefetch --configfile config/benchmark.yaml  # pretrained weights, ahead of offline jobs
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from finebench.errors import FinebenchError


def _json_arg(text: str, what: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FinebenchError(f"--{what}: not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FinebenchError(f"--{what}: expected a JSON object")
    return value


def cmd_check_config(args) -> int:
    from finebench import config

    cfg = config.load(args.config)
    runs = config.runs(cfg)
    print(f"{args.config}: OK — {len(cfg['tasks'])} task(s), {len(cfg['models'])} model(s), "
          f"{len(runs)} training run(s)")
    return 0


def cmd_list(args) -> int:
    from finebench import data, models

    print("datasets:")
    for name, src in sorted(data.DATASETS.items()):
        print(f"  {name:24s} {src.modality:7s} {src.description}")
        if src.official:
            counts = ", ".join(f"{k} {v:,}" for k, v in src.official["splits"].items())
            print(f"  {'':24s} {'':7s} official release: {src.official['classes']} classes; {counts}")
    print("architectures (plus timm:<name> for vision/speech):")
    for name, arch in sorted(models.ARCHS.items()):
        print(f"  {name:24s} {arch.family:12s} {','.join(arch.modalities):14s} {arch.description}")
    return 0


def cmd_download(args) -> int:
    from finebench import data
    from finebench.data.download import fetch_dataset
    from finebench.files import write_json_atomic

    source = data.DATASETS[args.dataset]
    if not source.downloadable:
        raise FinebenchError(f"--dataset: {args.dataset!r} has nothing to download")
    from finebench.data.download import LOCK_FILE

    root = fetch_dataset(args.dataset, source.remotes, args.cache, args.mirror or None, args.lock or LOCK_FILE)
    write_json_atomic(Path(args.out), {"dataset": args.dataset, "root": str((root / source.archive_root).resolve()),
                                       "files": [r.url for r in source.remotes]})
    print(f"[finebench] {args.dataset}: downloaded and verified -> {root}", file=sys.stderr)
    return 0


def cmd_prefetch(args) -> int:
    from finebench import prefetch

    if bool(args.configfile) == bool(args.weights):
        raise FinebenchError("give --configfile (every pretrained weight of a config) or --weights (the rule's list)")
    if args.configfile:
        from finebench import config

        cfg = config.load(args.configfile)
        weights = list(prefetch.weights_needed(cfg["models"], [m for _, m, _ in config.runs(cfg)]).values())
        root = args.hub_cache or prefetch.hub_root(cfg["download"]["cache"])
    else:
        try:
            weights = json.loads(args.weights)
        except json.JSONDecodeError as exc:
            raise FinebenchError(f"--weights: not valid JSON: {exc}") from exc
        if not args.hub_cache:
            raise FinebenchError("--weights needs --hub-cache (the folder the jobs read: {download.cache}/hub)")
        root = args.hub_cache
    prefetch.prefetch(weights, root, args.out)
    return 0


def cmd_prepare(args) -> int:
    from finebench import data

    if args.dataset not in data.DATASETS:
        raise FinebenchError(f"--dataset: unknown dataset {args.dataset!r}; known: {', '.join(sorted(data.DATASETS))}")
    options = {**data.DATASETS[args.dataset].defaults, **_json_arg(args.options, "options")}
    if args.download and not options.get("root"):
        options["root"] = json.loads(Path(args.download).read_text())["root"]
    manifest = data.prepare_task(args.task, args.dataset, options, args.out)
    sizes = ", ".join(f"{s} {v['n']}" for s, v in manifest["splits"].items())
    print(f"[finebench] prepared {args.task} ({args.dataset}): {manifest['num_classes']} classes; {sizes}; "
          f"{manifest['prepare_seconds']} s -> {args.out}", file=sys.stderr)
    return 0


def cmd_verify_data(args) -> int:
    from finebench.data import Prepared

    for folder in args.data:
        print(f"{folder}: OK — {Prepared(folder).verify(full=True)}")
    return 0


def cmd_init_tracking(args) -> int:
    from finebench.config import check_tracking_uri
    from finebench.tracking import init_experiment

    check_tracking_uri(args.tracking_uri)  # seconds, naming the path or URL — not minutes of MLflow retries
    exp_id = init_experiment(args.tracking_uri, args.experiment, args.artifact_root, args.out)
    print(f"[finebench] MLflow experiment {args.experiment!r} (id {exp_id}) at {args.tracking_uri}", file=sys.stderr)
    return 0


def _exit_on_signal(signum, frame):
    """Say in the job's log which signal stopped it (Snakemake itself only reports a non-zero exit), then exit."""
    print(f"[finebench] stopping: {exit_reason(128 + signum)}", file=sys.stderr, flush=True)
    sys.exit(128 + signum)


SIGNAL_CAUSES = {
    "SIGKILL": "out of memory (the kernel's OOM killer: see `dmesg`), a scheduler's hard limit, or kill -9",
    "SIGTERM": "Snakemake (Ctrl-C, or stopping after another job failed), the scheduler (time limit, preemption) or "
               "a user",
    "SIGINT": "Ctrl-C",
    "SIGHUP": "the terminal or the session that started it closed",
}


def exit_reason(status: int) -> str:
    """What a job's exit status means, in words (shells report death by signal N as 128 + N)."""
    if status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            return f"exit status {status}"
        cause = SIGNAL_CAUSES.get(name)
        return f"exit status {status}: killed by {name} (signal {status - 128}){f' — {cause}' if cause else ''}"
    if status == 2:
        return "exit status 2: finebench stopped with an error (the line above names the culprit)"
    if status == 1:
        return "exit status 1: an unexpected error (see the traceback above)"
    return f"exit status {status}"


def cmd_job_failed(args) -> int:
    """``cmd > log 2>&1 || python -m finebench job-failed $? log``: end a failed job's log with why, keep its status."""
    line = f"[finebench] job failed: {exit_reason(args.status)}"
    try:
        with open(args.log, "a") as f:
            f.write(line + "\n")
    except OSError as exc:  # a full disk, a log folder removed: say so, keep the job's status
        line += f" (not appended to {args.log}: {exc.strerror or exc})"
    print(line, file=sys.stderr)
    return args.status


def cmd_train(args) -> int:
    from finebench.cluster import claim_gpu

    # a local run with several GPUs: the least busy one, chosen before torch initialises CUDA (finebench.cluster)
    claim_gpu(args.device, log=lambda message: print(message, file=sys.stderr, flush=True))
    from finebench.train import fit

    # Snakemake (and schedulers) stop jobs with SIGTERM: turn it into SystemExit so the MLflow run ends KILLED.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    from finebench.files import full_disk_named

    with full_disk_named(args.out):
        fit(_json_arg(args.spec, "spec"), args.data, args.out, args.experiment_file, device=args.device,
            threads=args.threads, progress=None if not args.no_progress else False, tuned=args.tuned)
    from finebench.train import log_process_cost

    log_process_cost(1)
    return 0


def _done_earlier(out: Path, spec: dict, statuses: tuple[str, ...], files: tuple[str, ...] = ()) -> dict | None:
    """The metrics of a run (or trial) finished earlier in ``out`` for this very spec — its ``metrics.json`` there
    with the spec's hash and one of ``statuses``, and every one of ``files`` beside it — else None (train it)."""
    from finebench.config import spec_hash

    done = out / "metrics.json"
    if not done.is_file() or not all((out / name).is_file() for name in files):
        return None
    try:
        old = json.loads(done.read_text())
    except ValueError:  # half-written files are never there (written atomically); a hand-edited one is retrained
        return None
    if not isinstance(old, dict) or old.get("spec_hash") != spec_hash(spec) or old.get("status") not in statuses:
        return None
    return old


def _json_list(text: str, option: str, key: str) -> list[dict]:
    try:
        specs = json.loads(text)
    except ValueError as exc:
        raise FinebenchError(f"{option}: not JSON ({exc})") from None
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) and key in s for s in specs):
        raise FinebenchError(f"{option}: a JSON list of run specs, each with `{key}`")
    return specs


def cmd_train_trials(args) -> int:
    """Several tuning trials in one process (tuning.runs_per_job): each in its own folder, resumable on its own; a
    trial whose metrics.json is there, for this very spec, is not trained again."""
    from finebench.cluster import claim_gpu

    claim_gpu(args.device, log=lambda message: print(message, file=sys.stderr, flush=True))
    from finebench.config import spec_hash
    from finebench.files import full_disk_named, write_json_atomic
    from finebench.train import IDENTITY, Diverged, fit, log

    specs = _json_list(args.specs, "--specs", "trial")
    results = []
    for spec in specs:
        out = Path(args.out_root) / f"trial{spec['trial']}"
        old = _done_earlier(out, spec, ("FINISHED", "DIVERGED"))
        if old is not None:
            log(f"{spec['task']}/{spec['model']}/trial{spec['trial']}: done earlier ({out / 'metrics.json'}), kept")
            results.append(old)
            continue
        try:
            with full_disk_named(out):
                results.append(fit(spec, args.data, out, args.experiment_file, device=args.device,
                                   threads=args.threads, progress=False))
        except Diverged as exc:  # a search may draw a learning rate too high: a result of the trial, not a failure
            log(f"{spec['task']}/{spec['model']}/trial{spec['trial']}: diverged ({exc}); recorded without a score")
            result = {**{k: spec[k] for k in (*IDENTITY, "trial", "tuned_values")},
                      "status": "DIVERGED", "error": str(exc), "val_score": None, "spec_hash": spec_hash(spec),
                      "mlflow_run_id": exc.mlflow_run_id}  # its FAILED run, nested under the search like the others
            write_json_atomic(out / "metrics.json", result)
            results.append(result)
    write_json_atomic(args.out, results)
    from finebench.train import log_process_cost

    log_process_cost(len(specs))
    return 0


def cmd_train_runs(args) -> int:
    """The final seeds of one (task, model) in one process (config seeds_per_job), one after another: each trains in
    OUT_ROOT/seed<seed> exactly as ``train`` would (its checkpoint, resume and MLflow run of its own); a seed whose
    metrics.json and run files are there for this very spec is kept, not trained again. ``--out`` (the list of the
    runs' metrics) is written last, once every run is done: a job stopped half-way leaves none, and its rerun
    resumes each seed where it stopped."""
    from finebench.cluster import claim_gpu

    claim_gpu(args.device, log=lambda message: print(message, file=sys.stderr, flush=True))
    from finebench.files import full_disk_named, write_json_atomic
    from finebench.train import fit, log, log_process_cost, with_selection

    signal.signal(signal.SIGTERM, _exit_on_signal)  # as `train`: a stopped job ends its MLflow run KILLED
    specs = _json_list(args.specs, "--specs", "seed")
    pairs = {(s.get("task"), s.get("model")) for s in specs}
    if len(pairs) != 1 or any("trial" in s for s in specs) or len({s["seed"] for s in specs}) != len(specs):
        raise FinebenchError("--specs: the final runs of one (task, model), one per seed (trials: train-trials)")
    if args.tuned:  # the tuning's chosen values, read and checked once for the group (as `train --tuned` does)
        specs = [with_selection(spec, args.tuned) for spec in specs]
    results = []
    for k, spec in enumerate(specs, 1):
        out = Path(args.out_root) / f"seed{spec['seed']}"
        name = f"{spec['task']}/{spec['model']}/seed{spec['seed']}"
        old = _done_earlier(out, spec, ("FINISHED",), ("history.csv", *args.run_files))
        if old is not None:
            log(f"{name}: done earlier ({out / 'metrics.json'}), kept")
            results.append(old)
            continue
        log(f"{name}: run {k} of {len(specs)} in this process")
        with full_disk_named(out):
            results.append(fit(spec, args.data, out, args.experiment_file, device=args.device, threads=args.threads,
                               progress=False))
    write_json_atomic(args.out, results)
    log_process_cost(len(specs))
    return 0


def cmd_select_trials(args) -> int:
    import json

    from finebench.tracking import log_tuning_parent
    from finebench.tuning import select

    trials = [m for path in args.chunks for m in json.loads(Path(path).read_text())]
    selected = select(trials, _json_arg(args.identity, "identity"), args.out, experiment_file=args.experiment_file,
                      log_parent=log_tuning_parent)
    print(f"[finebench] {selected['task']}/{selected['model']}: trial {selected['trial']} of {selected['budget']} "
          f"chosen ({selected['val_metric']} {selected['val_score']:.4f}): {selected['values']}", file=sys.stderr)
    return 0


def cmd_aggregate(args) -> int:
    from finebench.report import aggregate
    from finebench.tasks import TASK_TYPES

    out = aggregate(args.metrics, args.out, args.plots, args.references, selected_files=args.tuning or ())
    rows = [f"{len(out[name]['leaderboard'])} {tt.title} rows" for name, tt in TASK_TYPES.items() if name in out]
    print(f"[finebench] {len(out['runs'])} runs -> {' + '.join(rows)} in {args.out}", file=sys.stderr)
    return 0


def cmd_ui_links(args) -> int:
    from finebench.tracking import ui_links

    lines = ui_links(args.tracking_uri, args.base)
    print("\n".join(lines) if lines else f"no finebench runs in {args.tracking_uri} yet (make run first)")
    return 0


def cmd_log_summary(args) -> int:
    from finebench.tracking import log_summaries

    out = log_summaries(args.experiment_file, args.tables, args.plots, args.out)
    print(f"[finebench] MLflow summary runs: {out['summary_runs']}", file=sys.stderr)
    return 0


def cmd_baseline(args) -> int:
    import json

    from finebench.baselines import text_baselines

    print(json.dumps(text_baselines(args.data), indent=2))
    return 0


def cmd_tracking_server(args) -> int:
    from finebench.server import TrackingServer

    server = TrackingServer(args.dir)
    if args.action == "start":
        state = server.start(host=args.host, port=args.port, pg_port=args.pg_port, allowed_hosts=args.allowed_hosts,
                             auth=not args.no_auth)
        _tracking_server_access(state)
        print(f"[finebench] tracking server up in {state['start_seconds']} s — put this in your config:",
              file=sys.stderr)
        print(f"tracking_uri: {state['tracking_uri']}")
    elif args.action == "stop":
        server.stop()
    else:
        running, state = server.running(), server.state()
        up = running["mlflow"] and running["postgres"]
        print(json.dumps({"running": bool(up), **running, "tracking_uri": state.get("tracking_uri"),
                          "auth": state.get("auth"), "credentials": state.get("credentials")}, indent=2))
        return 0 if up else 1
    return 0


def _tracking_server_access(state: dict) -> None:
    """Who may use the server just started, and how the jobs get its credentials."""
    from finebench.server import CREDENTIALS_ENV, DEFAULT_CREDENTIALS, read_credentials

    if not state.get("auth"):
        print("[finebench] WARNING: no authentication (--no-auth): every user of this machine can delete the "
              "server's experiments, runs and artifacts", file=sys.stderr)
        return
    creds = Path(state["credentials"])
    found = creds == Path(DEFAULT_CREDENTIALS).resolve()
    user = read_credentials(creds)["username"]
    print(f"[finebench] authentication on (MLflow basic-auth): user {user}, password in {creds} (mode 0600); jobs "
          + ("read it by themselves when the workflow runs in this folder, elsewhere after" if found else
             "read it after") + f":  export {CREDENTIALS_ENV}={creds}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="finebench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("check-config", help="validate a config file against the schema and registries")
    s.add_argument("config")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("list", help="list known datasets and architectures")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("prepare", help="build one task's dataset into the prepared form")
    s.add_argument("--task", required=True)
    s.add_argument("--dataset", required=True)
    s.add_argument("--options", default="{}", help="JSON object of dataset options (registry defaults fill the rest)")
    s.add_argument("--download",
                   help="marker written by `finebench download` (its root is used unless options set one)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("verify-data", help="check prepared data against its manifest (shapes, sizes, sha256)")
    s.add_argument("data", nargs="+", help="prepared task folders, e.g. results/data/*")
    s.set_defaults(func=cmd_verify_data)

    s = sub.add_parser("download", help="download, verify and extract a real dataset into the cache")
    s.add_argument("--dataset", required=True)
    s.add_argument("--cache", required=True)
    s.add_argument("--mirror", default="", help="base URL or local folder holding the same file names")
    s.add_argument("--lock", default="",
                   help="checksum lock file (default: finebench/data/downloads.lock.json in the package)")
    s.add_argument("--out", required=True, help="marker JSON written when everything is verified")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("prefetch", help="fetch a config's pretrained weights and tokenizers for jobs without network")
    s.add_argument("--configfile", help="the config whose pretrained weights to fetch (into its download.cache/hub)")
    s.add_argument("--weights", help="JSON list of weights (finebench.prefetch.weights_needed; the rule's form)")
    s.add_argument("--hub-cache", help="folder of the cache (default: the config's download.cache + /hub)")
    s.add_argument("--out", nargs="+", help="each weight's marker, written last (default: "
                   "HUB_CACHE/<weight>.prefetched.json)")
    s.set_defaults(func=cmd_prefetch)

    s = sub.add_parser("init-tracking", help="create the MLflow store and experiment (once, before training)")
    s.add_argument("--tracking-uri", required=True)
    s.add_argument("--experiment", required=True)
    s.add_argument("--artifact-root", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_init_tracking)

    s = sub.add_parser("train", help="train and evaluate one (task, model, seed) run")
    s.add_argument("--spec", required=True, help="resolved run spec as a JSON object")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--experiment-file", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--tuned", help="selected.json of a tuned run: the values its tuning chose (finebench.tuning)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("train-trials", help="train tuning trials one after another in one process (validation only)")
    s.add_argument("--specs", required=True, help="JSON list of trial specs (finebench.config.trial_specs)")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--experiment-file", required=True)
    s.add_argument("--out-root", required=True, help="each trial k trains in OUT_ROOT/trial<k>")
    s.add_argument("--out", required=True, help="JSON list of the trials' metrics, written when all are done")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_train_trials)

    s = sub.add_parser("train-runs", help="train the final seeds of one (task, model) one after another in one process")
    s.add_argument("--specs", required=True,
                   help="JSON list of run specs, one per seed (finebench.config.resolve_spec)")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--experiment-file", required=True)
    s.add_argument("--out-root", required=True, help="each seed s trains in OUT_ROOT/seed<s>")
    s.add_argument("--out", required=True, help="JSON list of the runs' metrics, written when all are done")
    s.add_argument("--run-files", nargs="*", default=[],
                   help="files each run writes besides metrics.json and history.csv (its task type's run_files)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--tuned", help="selected.json of a tuned model: the values its tuning chose (finebench.tuning)")
    s.set_defaults(func=cmd_train_runs)

    s = sub.add_parser("select-trials", help="pick the best trial on validation, file the MLflow tuning parent run")
    s.add_argument("chunks", nargs="+", help="the trials' JSON lists written by train-trials")
    s.add_argument("--identity", required=True, help="the tuning as the final runs' spec names it (JSON)")
    s.add_argument("--experiment-file", required=True)
    s.add_argument("--out", required=True, help="selected.json")
    s.set_defaults(func=cmd_select_trials)

    s = sub.add_parser("log-summary", help="log one MLflow summary run per task with its tables and plots")
    s.add_argument("--experiment-file", required=True)
    s.add_argument("--tables", required=True)
    s.add_argument("--plots", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_log_summary)

    s = sub.add_parser("ui-links", help="the MLflow UI addresses that open on each experiment's current runs")
    s.add_argument("--tracking-uri", default="sqlite:///results/mlflow.db")
    s.add_argument("--base", default="http://127.0.0.1:5000", help="where the UI is served")
    s.set_defaults(func=cmd_ui_links)

    s = sub.add_parser("baseline", help="majority-class and TF-IDF + logistic regression on a prepared text task")
    s.add_argument("data", help="prepared text task folder, e.g. results/data/wordnet")
    s.set_defaults(func=cmd_baseline)

    s = sub.add_parser("job-failed", help="append why a job failed (exit status, signal) to its log; exit with it")
    s.add_argument("status", type=int)
    s.add_argument("log")
    s.set_defaults(func=cmd_job_failed)

    s = sub.add_parser("aggregate", help="metrics.json files -> results tables")
    s.add_argument("metrics", nargs="+")
    s.add_argument("--out", required=True, help="tables folder")
    s.add_argument("--plots", help="plots folder (omit for tables only)")
    s.add_argument("--references", help="YAML of published accuracies (config/references.yaml)")
    s.add_argument("--tuning", nargs="*", help="the tunings' selected.json (tuning.csv, evp.csv, tuning.md)")
    s.set_defaults(func=cmd_aggregate)

    s = sub.add_parser("tracking-server", help="start/stop a shared MLflow tracking server on PostgreSQL (clusters)")
    s.add_argument("action", nargs="?", default="start", choices=["start", "status", "stop"])
    s.add_argument("--dir", default="results/tracking-server", help="its database, artifacts, logs and pid files")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind; 0.0.0.0 for jobs on other nodes")
    s.add_argument("--port", type=int, default=5000, help="HTTP port of the MLflow server")
    s.add_argument("--pg-port", type=int, default=5433, help="PostgreSQL port (its Unix socket; no TCP listener)")
    s.add_argument("--allowed-hosts", help="MLflow --allowed-hosts (default: this machine's names, localhost, "
                   "private IPs)")
    s.add_argument("--no-auth", action="store_true", help="no authentication (MLflow basic-auth is on by default); "
                   "refused unless --host is a loopback address")
    s.set_defaults(func=cmd_tracking_server)
    return p


def main(argv=None) -> int:
    # MLflow telemetry calls an outside host; offline its failure once crashed a client. Off unless the user opts in
    # (MLFLOW_DISABLE_TELEMETRY=false).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args = parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # logged, then SystemExit: half-built folders are cleaned up
        if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup make run` ignores SIGHUP: keep it ignored
            signal.signal(sig, _exit_on_signal)
    try:
        return args.func(args)
    except FinebenchError as exc:
        print(f"finebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
