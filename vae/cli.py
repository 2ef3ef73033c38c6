"""`python -m vae generate | import | train | evaluate | runs`.

A user's mistake (missing folder, bad value, too few images) prints one line
`error: ...` and exits 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from vae.base import safety
from vae.base.errors import UserError, exit_code
from vae.base.paths import data_root
from vae.base.registry import ARCHITECTURES, ENTANGLEMENT_TERMS
from vae.base.runtime import load_keras
from vae.data import benchmarks, datasets
from vae.data import presets
from vae.jobs import launcher
from vae.jobs import standby
from vae.model import methods
from vae.runs.config import PRECISIONS, VARIANCE_MODES, TrainConfig
from vae.runs.folder import list_runs, read_config, refuse_if_trained_elsewhere, write_run_config


def _progress_bar(label: str):
    state = {"t0": time.time(), "last": 0.0}
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        now = time.time()
        if done < total and now - state["last"] < 0.2:
            return
        state["last"] = now
        frac = done / max(total, 1)
        bar = "#" * int(30 * frac)
        rate = done / max(now - state["t0"], 1e-9)
        line = f"{label} [{bar:<30}] {done}/{total} ({rate:,.0f}/s)"
        if tty:
            sys.stderr.write("\r" + line + ("\n" if done >= total else ""))
        elif done >= total or int(frac * 10) != int((done - 1) / max(total, 1) * 10):
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return progress


def cmd_generate(args) -> int:
    overrides = {"image_size": args.size, "seed": args.seed}
    if args.n is not None:
        overrides["n"] = args.n
    if args.fit:
        overrides["fit"] = args.fit
    if args.hole:
        overrides["hole"] = True
    spec = presets.preset_spec(args.preset, **overrides)
    # Two processes: 2088 against 1690 images/s with one (bench/RESULTS.md, bench/bench_generate.py). The
    # library's default stays one process: the dashboard's server is multi-threaded, where forking is unsafe.
    out = datasets.write_dataset(
        spec,
        args.out,
        progress=None if args.quiet else _progress_bar("generate"),
        overwrite=args.overwrite,
        workers=min(2, os.cpu_count() or 1),
    )
    if not args.quiet:
        ds = datasets.load_dataset(out)
        counts = ", ".join(f"{k} {v}" for k, v in ds.meta.get("counts", {}).items())
        print(f"wrote {out} ({counts})")
    return 0


def cmd_import(args) -> int:
    out, report = datasets.import_images(args.path, args.out, size=args.size)
    skipped = report.get("skipped", []) if isinstance(report, dict) else []
    for item in skipped:
        print(f"skipped {item.get('file')}: {item.get('reason')}", file=sys.stderr)
    if not args.quiet:
        ignored = f", {report['ignored']} other file(s) ignored" if report.get("ignored") else ""
        print(f"wrote {out} ({report.get('imported', '?')} images, {len(skipped)} skipped{ignored})")
    return 0


def _read_config_file(path) -> TrainConfig:
    """A TrainConfig from a run's config.json (`{"config": {...}}`) or a bare settings object."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file; give a run's config.json") from None
    except (OSError, ValueError) as e:
        raise UserError(f"--config {path} is not readable JSON ({e}); give a run's config.json") from None
    cfg = doc.get("config") if isinstance(doc, dict) and isinstance(doc.get("config"), dict) else doc
    if not isinstance(cfg, dict):
        raise UserError(f"--config {path} holds no settings object; give a run's config.json")
    return TrainConfig.from_dict(cfg)


def _config_from_args(args):
    if getattr(args, "config", None):
        base = _read_config_file(args.config)
        if args.data:
            base.dataset = args.data
    else:
        base = TrainConfig.study(args.data) if args.study else TrainConfig(dataset=args.data)
    if args.method is not None:  # a papers' method defaults to the papers' reduction and KL weight
        for key, value in methods.papers_settings(args.method).items():
            setattr(base, key, value)
    for key in (
        "arch",
        "latent_dim",
        "beta",
        "gamma",
        "entanglement",
        "variance",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "precision",
        "image_size",
        "method",
        "reduction",
    ):
        value = getattr(args, key)
        if value is not None:
            setattr(base, key, value)
    given = {name: getattr(args, name) for name in methods.all_params() if getattr(args, name) is not None}
    base.method_params = {**base.method_params, **given}  # validate() names a flag the method does not take
    if args.sample_weights:
        base.sample_weights = True
    if args.image_size is None and args.data:  # with --config alone, the run's own image size
        base.image_size = datasets.load_dataset(args.data).image_size
    return base


def cmd_train(args) -> int:
    safety.require_writable(f"train {args.run_dir or args.out or ''}".rstrip())  # before TensorFlow loads
    if args.run_dir:
        run_dir = Path(args.run_dir)
        if not (run_dir / "config.json").exists():
            raise UserError(f"{run_dir} has no config.json; use --data and --out to start a new run")
        datasets.load_dataset(read_config(run_dir)["config"]["dataset"])  # a damaged run or dataset: said now,
        refuse_if_trained_elsewhere(run_dir)  # before TensorFlow's seconds of imports
    else:
        if not (args.data or args.config) or not args.out:
            raise UserError(
                "train needs --data DATASET (or --config CONFIG.json) and --out RUN_FOLDER "
                "(or --run-dir of a prepared run)"
            )
        cfg = _config_from_args(args)
        cfg.dataset = str(Path(cfg.dataset).resolve())  # the run may be read from any folder (delete guard, pages)
        ds = datasets.load_dataset(cfg.dataset)
        cfg.validate(train_size=len(ds.indices("train")))
        run_dir = Path(args.out)
        if (run_dir / "config.json").exists() and not args.resume:
            raise UserError(f"{run_dir} already holds a run; choose another --out or add --resume")
        if not args.resume:
            safety.require_run_space(cfg, ds.meta.get("counts") or {}, run_dir)  # before the run folder exists
            write_run_config(run_dir, cfg)
    load_keras()  # TensorFlow loads only for this command, once the settings are known to be good
    from vae.training.train import run_trainer

    try:
        return run_trainer(run_dir, resume=args.resume, verbose=not args.quiet, quiet=args.quiet)
    finally:
        _start_next(run_dir.resolve().parent)


def _start_next(runs_root) -> None:
    """A trainer that ends starts the next waiting run (vae.jobs.launcher queue), so the queue moves with no page open."""
    try:
        launcher.start_waiting(runs_root)
    except (UserError, OSError) as e:
        print(f"could not start the next waiting run: {e}", file=sys.stderr)


def cmd_standby(args) -> int:
    safety.require_writable("serve as a standby trainer")  # before runs/.standby/ and the queue are touched
    try:
        return standby.serve(args.runs_root, args.launcher_pid)
    finally:
        _start_next(args.runs_root)  # the standby trained a run (or left): the queue may move


def cmd_evaluate(args) -> int:
    safety.require_writable(f"evaluate {args.run} (it writes evaluation.json and latents.csv)")
    datasets.load_dataset(read_config(args.run)["config"]["dataset"])  # a damaged run or dataset: said before
    # TensorFlow's seconds of imports
    load_keras()  # TensorFlow loads only for this command
    from vae.jobs.evaluation_jobs import evaluate_with_progress

    result = evaluate_with_progress(
        args.run, max_train=args.max_train, seed=args.seed, dci_setting="fast" if args.fast else "reference"
    )
    sweep_dir = Path(args.run).resolve().parent.parent
    if Path(args.run).resolve().parent.name == "runs" and (sweep_dir / "sweep.json").is_file():
        from vae.sweeps import sweep

        sweep.write_results(sweep_dir)  # "Evaluate again" on a sweep's run: its results.csv follows
    if args.quiet:
        return 0
    print(json.dumps(result.get("summary", {}), indent=2))
    print(f"wrote {Path(args.run) / 'evaluation.json'} and {Path(args.run) / 'latents.csv'}")
    return 0


def cmd_sweep(args) -> int:
    from vae.sweeps import sweep

    if args.report:
        from vae.sweeps.report import text_report

        doc = sweep.read_sweep(args.report)
        print(text_report(sweep.result_rows(args.report, doc), doc.get("grid") or {}))
        return 0
    if args.export:
        from vae.base.fileio import atomic_write_bytes
        from vae.sweeps.export import sweep_bundle

        if not args.export_to:
            safety.require_writable(f"write the export bundle into {args.export} (or give --export-to FILE.zip)")
        target = Path(args.export_to or Path(args.export) / f"{Path(args.export).resolve().name}-export.zip")
        atomic_write_bytes(target, sweep_bundle(args.export))
        print(f"wrote {target}")
        return 0
    if args.stop:
        sweep.request_stop(args.stop)
        print(f"stop requested for {args.stop}: queued runs will not start, running runs stop after their batch")
        return 0
    if args.resume:
        if args.data or args.out or args.grid:
            raise UserError("--resume continues a planned sweep as it is; leave out --data, --out and --grid")
        sweep_dir = Path(args.resume)
        sweep.read_sweep(sweep_dir)
    else:
        if not args.data or not args.out:
            raise UserError("sweep needs --data DATASET and --out SWEEP_FOLDER (or --resume SWEEP_FOLDER)")
        fixed = {
            name: getattr(args, "fix_" + name)
            for name in sweep.sweepable()
            if getattr(args, "fix_" + name, None) is not None
        }
        sweep_dir = sweep.plan_sweep(
            args.out,
            args.data,
            sweep.parse_grid(args.grid),
            args.seeds,
            fixed,
            cpus_per_run=args.cpus_per_run,
            evaluate=args.evaluate,
            gpus_per_run=args.gpus_per_run,
        )
        n = len(sweep.read_sweep(sweep_dir)["runs"])
        print(f"planned {n} runs in {sweep_dir}")
        if args.plan_only:
            return 0
    from vae.sweeps.engine import run_sweep

    status = run_sweep(
        sweep_dir,
        address=args.ray_address,
        workers=args.workers,
        cpus_per_run=args.cpus_per_run,
        say=(lambda *a: None) if args.quiet else print,
        engine=args.engine,
        group_size=args.group_size,
    )
    print(f"{status['state']}: {status.get('message', '')}; results in {Path(sweep_dir) / 'results.csv'}")
    return 0 if status["state"] in ("finished", "stopped") else 1


def _correlate_arg(text: str | None):
    if not text:
        return None
    parts = text.split(",")
    try:
        f1, f2, rho = parts
        return f1.strip(), f2.strip(), float(rho)
    except ValueError:
        raise UserError(f"--correlate takes FACTOR1,FACTOR2,RHO (e.g. shape,scale,0.5), not {text!r}") from None


def cmd_import_benchmark(args) -> int:
    safety.require_writable(f"import benchmark {args.name} into {args.out}")
    bench = benchmarks.benchmark(args.name)
    path = args.path
    if path is None:
        if not args.download:
            raise UserError(
                f"give the path of {bench.title}'s file (or the folder holding its files), "
                f"or --download to fetch it from {bench.files[0].url.split('/')[2]}"
            )
        dest = Path(args.download_dir) if args.download_dir else data_root() / "downloads" / bench.name
        path = benchmarks.download(bench.name, dest, progress=None if args.quiet else _progress_bar("download"))
    out = benchmarks.import_benchmark(
        bench.name,
        path,
        args.out,
        size=args.size,
        fit=args.fit,
        n=args.n,
        correlate=_correlate_arg(args.correlate),
        seed=args.seed,
        check=not args.no_verify,
        overwrite=args.overwrite,
        progress=None if args.quiet else _progress_bar("convert"),
        check_progress=None if args.quiet else _progress_bar("check MD5"),
    )
    if not args.quiet:
        ds = datasets.load_dataset(out)
        counts = ", ".join(f"{k} {v:,}" for k, v in ds.meta.get("counts", {}).items())
        print(f"wrote {out} ({counts}; factors {', '.join(ds.factor_names)})")
    return 0


def cmd_runs(args) -> int:
    runs = list_runs(args.root)
    if not runs:
        print(f"no runs under {args.root}")
        return 0
    print(f"{'name':<60} {'state':<9} {'epoch':>5} {'val_loss':>10}")
    for r in runs:
        vl = (r.get("final") or {}).get("val_loss")
        vl = f"{vl:.5f}" if isinstance(vl, (int, float)) else "-"
        line = f"{r['name']:<60} {str(r.get('state')):<9} {r.get('epoch') or 0:>5} {vl:>10}"
        if r.get("state") in ("damaged", "unknown"):
            line += f"  ({r.get('message', '')})"
        print(line)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line `error: ...` (exit 2) like every other mistake."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m vae", description="VAE Disentanglement Lab: datasets, training, evaluation")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="generate a dataset folder from a preset")
    g.add_argument("--preset", required=True, help=", ".join(presets.PRESETS))
    g.add_argument("--size", type=int, default=64, help="training image size in pixels (default 64)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--n", type=int, default=None, help="number of images (subsamples where the preset allows)")
    g.add_argument("--fit", choices=("stretch", "pad"), default=None, help="stretch (the study) or pad to square")
    g.add_argument("--out", required=True, help="dataset folder to create, e.g. datasets/seed-full")
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    g.add_argument(
        "--hole",
        action="store_true",
        help="hold out the study's hole (starfish presets; seed-exact --hole is the study's punctured split)",
    )
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("import", help="turn a folder or .zip of images into a dataset")
    i.add_argument("path")
    i.add_argument("--out", required=True)
    i.add_argument("--size", type=int, default=64)
    i.add_argument("--quiet", action="store_true", help="print nothing but errors (and skipped files)")
    i.set_defaults(func=cmd_import)

    ib = sub.add_parser(
        "import-benchmark",
        help="convert a benchmark's published file (dSprites, 3D Shapes, MPI3D, SmallNORB, Cars3D) into a dataset",
        description="Check a benchmark's file against its published MD5 and write the lab's "
        "dataset folder: grayscale images at --size, the factor table, a random 10% "
        "validation split, optionally a subsample with two factors correlated.",
    )
    ib.add_argument("name", choices=tuple(benchmarks.BENCHMARKS), help="which benchmark")
    ib.add_argument(
        "path",
        nargs="?",
        help="the downloaded file, or the folder holding its files "
        "(SmallNORB: the six .mat.gz; Cars3D: the .tar.gz or its unpacked folder)",
    )
    ib.add_argument("--out", required=True, help="dataset folder to create, e.g. datasets/dsprites-real")
    ib.add_argument("--size", type=int, default=64, help="training image size in pixels (default 64)")
    ib.add_argument("--fit", choices=("stretch", "pad"), default="stretch")
    ib.add_argument("--n", type=int, default=None, help="keep a seeded random subsample of N images")
    ib.add_argument(
        "--correlate",
        metavar="F1,F2,RHO",
        help="keep N images in which factors F1 and F2 have correlation RHO (Träuble et al. 2021); needs --n",
    )
    ib.add_argument("--seed", type=int, default=0, help="seed of the subsample and the validation split")
    ib.add_argument(
        "--download",
        action="store_true",
        help="without PATH: download from the official source into $VAE_LAB_HOME/downloads/NAME (checked)",
    )
    ib.add_argument("--download-dir", help="where --download puts the files")
    ib.add_argument(
        "--no-verify",
        action="store_true",
        help="convert a file whose MD5 is not the published one (recorded in dataset.json)",
    )
    ib.add_argument("--overwrite", action="store_true")
    ib.add_argument("--quiet", action="store_true", help="print nothing but errors")
    ib.set_defaults(func=cmd_import_benchmark)

    t = sub.add_parser("train", help="train a VAE (foreground); writes a run folder")
    t.add_argument("--data", help="dataset folder")
    t.add_argument("--out", help="run folder to create")
    t.add_argument("--run-dir", help="train a prepared run folder (config.json written by the dashboard)")
    t.add_argument(
        "--config",
        metavar="FILE",
        help="start from a run's config.json (every setting, its dataset "
        "included): reproduce that run; other flags change single settings",
    )
    t.add_argument("--resume", action="store_true", help="continue from last.keras")
    t.add_argument("--study", action="store_true", help="start from the study's settings (seed net, batch 8, ...)")
    t.add_argument(
        "--arch", choices=tuple(ARCHITECTURES), help="; ".join(f"{name}: {a.help}" for name, a in ARCHITECTURES.items())
    )
    t.add_argument("--image-size", type=int, help="must equal the dataset's image size (default: the dataset's)")
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--beta", type=float)
    t.add_argument("--gamma", type=float)
    t.add_argument(
        "--entanglement",
        choices=tuple(ENTANGLEMENT_TERMS),
        help="; ".join(f"{name}: {e.help}" for name, e in ENTANGLEMENT_TERMS.items()),
    )
    t.add_argument("--variance", choices=VARIANCE_MODES)
    t.add_argument(
        "--method",
        choices=methods.METHOD_NAMES,
        help="disentanglement method (default beta-vae); its parameters are the flags below",
    )
    t.add_argument(
        "--reduction",
        choices=tuple(methods.REDUCTIONS),
        help="; ".join(f"{k}: {v}" for k, v in methods.REDUCTIONS.items())
        + " (default study; papers, with --beta 1, for the methods whose parameters come from papers)",
    )
    for name, param in methods.all_params().items():
        users = {m.name: p.default for m in methods.METHODS.values() for p in m.params if p.name == name}
        papers = ", ".join(f"{m} {v}" for m, v in users.items()) if len(set(users.values())) > 1 else str(param.default)
        t.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=param.kind,
            choices=param.choices or None,
            help=f"{', '.join(users)}: {param.help} (papers: {papers})",
        )
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=PRECISIONS)
    t.add_argument("--sample-weights", action="store_true", help="weight images by the study's (bmax-b)/(bmax-bmin)")
    t.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but errors (and the final state when the run did not finish)",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="encode every split of a run's dataset; write evaluation.json, latents.csv")
    e.add_argument("run")
    e.add_argument("--max-train", type=int, default=10000, help="training codes used by the metrics (default 10000)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--fast",
        action="store_true",
        help="DCI with 20 boosting stages on up to 2,000 points (labelled 'fast'); default: "
        "disentanglement_lib's 100 stages on up to 10,000",
    )
    e.add_argument("--quiet", action="store_true", help="print nothing but errors")
    e.set_defaults(func=cmd_evaluate)

    sb = sub.add_parser("standby", help="(started by the dashboard) a warm trainer waiting for a run")
    sb.add_argument("--runs-root", required=True)
    sb.add_argument("--launcher-pid", type=int, help="leave when this process ends (the dashboard server)")
    sb.set_defaults(func=cmd_standby)

    w = sub.add_parser(
        "sweep",
        help="train a grid of settings x seeds as Ray tasks (local or on a cluster)",
        description="Plan a grid of settings x seeds into a sweep folder and train and evaluate "
        "every run on Ray; --resume continues one. Any training setting can be fixed "
        "with its flag (e.g. --epochs 8 --arch seed) or swept with --grid.",
    )
    w.add_argument("--data", help="dataset folder")
    w.add_argument("--out", help="sweep folder to create, e.g. sweeps/gamma")
    w.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="SETTING=V1,V2",
        help="a swept setting and its values, e.g. gamma=0,1e-4,1e-3 (repeat for more settings)",
    )
    w.add_argument("--seeds", type=int, default=1, help="seeds per setting: 0..N-1 (default 1)")
    w.add_argument("--resume", metavar="SWEEP", help="continue a sweep: train only what is not finished")
    w.add_argument("--report", metavar="SWEEP", help="print a sweep's answer (distributions over seeds, effects)")
    w.add_argument("--stop", metavar="SWEEP", help="ask a running sweep's driver to stop")
    w.add_argument(
        "--export",
        metavar="SWEEP",
        help="write the sweep's export bundle (zip: results.csv, configs, "
        "figures, versions) to SWEEP/NAME-export.zip or --export-to",
    )
    w.add_argument("--export-to", metavar="FILE.zip", help="where --export writes the zip")
    w.add_argument(
        "--ray-address",
        default=None,
        help="an existing Ray cluster (default: RAY_ADDRESS, else a local Ray instance sized to this machine)",
    )
    w.add_argument("--workers", type=int, help="runs at a time (default: the cluster's CPUs / CPUs per run)")
    w.add_argument("--cpus-per-run", type=int, help="CPUs (and threads) per run (default 1)")
    w.add_argument(
        "--gpus-per-run",
        type=float,
        default=0.0,
        help="GPUs per run on nodes that have them (Ray's num_gpus; e.g. 1, or 0.5 to share one)",
    )
    w.add_argument(
        "--evaluate",
        choices=("quick", "full", "none"),
        default="quick",
        help="after each run: quick (every metric but FactorVAE/BetaVAE scores, which render new "
        "images, and DCI at its 'sweep' setting: 50 boosting stages at learning rate 0.2), full (the "
        "reference evaluation), or none (default quick)",
    )
    w.add_argument(
        "--engine",
        choices=("per-run", "grouped"),
        default="per-run",
        help="per-run (default): one run per task; grouped: each task trains up to --group-size seeds "
        "of one setting as one grouped model in one process (measured 1.05x the runs per hour "
        "here, and an interrupted group restarts from epoch 0: docs/sweep-engines.md)",
    )
    w.add_argument("--group-size", type=int, default=None, help="seeds per grouped task (default 5)")
    w.add_argument("--plan-only", action="store_true", help="write the sweep folder, train nothing")
    w.add_argument("--quiet", action="store_true")
    from vae.sweeps.sweep import sweepable

    for name in sweepable():
        w.add_argument("--" + name.replace("_", "-"), dest="fix_" + name, metavar="VALUE", help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_sweep)

    r = sub.add_parser("runs", help="list run folders with their state")
    r.add_argument("--root", default=os.environ.get("VAE_LAB_HOME", ".") + "/runs")
    r.set_defaults(func=cmd_runs)
    return p


def _checked(args) -> int:
    problems = safety.check_environment()  # a bad VAE_LAB_* value: one clear line now, not a failure mid-job
    if problems:
        raise UserError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return args.func(args)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(_checked, args)


def console() -> None:
    """Entry point of `python -m vae` and the `vae-lab` command: run main, then exit."""
    code = main()
    if "tensorflow" in sys.modules:
        # Every file is written and closed by now; TensorFlow's own teardown at interpreter exit takes
        # about 2 s of CPU (bench/RESULTS.md), which a finished trainer need not spend.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0)
    sys.exit(code)
