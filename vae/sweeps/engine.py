"""The sweep driver: trains and evaluates a sweep's runs as Ray tasks (imports Ray, never TensorFlow).

`run_sweep(sweep_dir)` starts a local Ray instance sized to the machine (or joins the cluster at
`address` / RAY_ADDRESS), submits one task per run that is not done yet, at most `workers` at a
time, and records each result in the sweep's status.json and results.csv as it lands.

Engines (`engine=`, the CLI's --engine): "per-run", the default, gives each task one run (`execute_run`);
"grouped" gives each task up to `group_size` seeds of one setting (`plan_tasks`), trained as one grouped
model in one process (`execute_group`, vae.training.grouped: each seed's own initialisation and data order,
every run folder written as the per-run trainer writes it).

Each per-run task (`execute_run`, in a Ray worker) trains its run folder with the library's `train_run`
(resuming from last.keras when the folder has one) and then evaluates it (`evaluate_run`). Faults:
- a worker killed mid-run: Ray retries the task (max_retries); the retry resumes the run from its
  last completed epoch (the trainer drops metric lines past it), so no epoch is counted twice;
- the driver killed: the local Ray instance and its workers end with it; the runs it was training
  are left `failed` (their trainer's pid is gone) with last.keras, and `--resume` continues them;
- a finished and evaluated run is never trained again; a finished run without evaluation is only
  evaluated;
- grouped: a group's runs without a checkpoint train again from epoch 0 as a group; a run with a
  checkpoint (last.keras) resumes on its own from its last epoch (with a fresh Adam: a grouped checkpoint
  holds no optimizer state).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from vae.base.errors import UserError
from vae.base.fileio import HeartbeatFile, atomic_write_json
from vae.base.paths import lab_pythonpath  # the workers import `vae` from the driver's path
from vae.base.safety import is_loopback_address, require_writable
from vae.sweeps import sweep

HEARTBEAT_S = 3.0
TASK_RETRIES = 3
ENGINES = ("per-run", "grouped")  # per-run: one run per task (the default); grouped: a setting's seeds as one SeedGroup
#                                  per task (1.05x the runs per hour on 2 cores: bench/RESULTS.md)
GROUP_SIZE = 5  # seeds per grouped task (bench/RESULTS.md, "Seeds as one grouped model")


def default_workers(cpus: int, cpus_per_run: int) -> int:
    return max(1, cpus // max(1, cpus_per_run))


def _thread_env(threads: int) -> dict:
    """Per-run thread limits, set before TensorFlow loads in the worker process."""
    t = str(max(1, int(threads)))
    # inter-op 2 even for one core: 1 inter-op thread cost 20% of the images/s (bench/RESULTS.md, thread settings)
    return {
        "TF_NUM_INTRAOP_THREADS": t,
        "TF_NUM_INTEROP_THREADS": "2",
        "OMP_NUM_THREADS": t,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def execute_run(
    run_dir: str, evaluate: str = "quick", threads: int | None = None, wait_s: float = 60.0, node: str | None = None
) -> dict:
    """Train (or resume) and evaluate one run folder in this process; returns what the driver records.

    Called in a Ray worker, but plain Python: a test or a script can call it directly. `node` (the Ray node) and
    this host go into the run's own status.json once it is trained, so results.csv has them even when the
    driver dies before it records the result (results.csv falls back to the run's status).
    """
    from vae.runs.folder import ACTIVE, run_state

    run_dir = Path(run_dir)
    t0 = time.time()
    if threads:
        for k, v in _thread_env(threads).items():
            os.environ.setdefault(k, v)
    # A trainer of a previous attempt may still be ending (a driver restarted quickly): wait for it.
    deadline = time.time() + wait_s
    while run_state(run_dir).get("state") in ACTIVE and run_state(run_dir).get("pid") != os.getpid():
        if time.time() > deadline:
            raise UserError(f"run {run_dir.name} is still trained by pid {run_state(run_dir).get('pid')}")
        time.sleep(1.0)
    state = run_state(run_dir).get("state")
    trained = False
    if state != "finished":
        from vae.training.train import train_run

        status = train_run(run_dir, resume=(run_dir / "last.keras").exists())
        state, trained = status["state"], True
    if node is not None and state == "finished":
        _note_where(run_dir, node)
    evaluated = False
    if evaluate != "none" and state == "finished" and not (run_dir / "evaluation.json").exists():
        from vae.training.evaluate import evaluate_run, sweep_evaluation

        evaluate_run(run_dir, **sweep_evaluation(evaluate))
        evaluated = True
    if trained:
        import keras

        keras.backend.clear_session()  # the worker trains the next run with a clean graph
    return {
        "state": state,
        "trained": trained,
        "evaluated": evaluated,
        "wall_s": round(time.time() - t0, 2),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }


def execute_group(
    run_dirs: list[str], evaluate: str = "quick", threads: int | None = None, node: str | None = None
) -> dict:
    """Train the runs of one setting that are not finished as one seed group (vae.training.grouped), then
    evaluate every finished run without evaluation; returns {run name: what execute_run returns}."""
    from vae.runs.folder import run_state

    t0 = time.time()
    if threads:
        for k, v in _thread_env(threads).items():
            os.environ.setdefault(k, v)
    dirs = [Path(r) for r in run_dirs]
    # An interrupted run with a checkpoint resumes on its own (execute_run); the others train as one group.
    train = [d for d in dirs if run_state(d).get("state") != "finished" and not (d / "last.keras").exists()]
    out = {}
    if train:
        from vae.training.grouped import train_group

        res = train_group(train, evaluate=evaluate, status_fields={"node": node, "host": socket.gethostname()})
        for d in train:
            out[d.name] = {
                "state": res["states"][d.name],
                "trained": True,
                "evaluated": (d / "evaluation.json").exists() and evaluate != "none",
            }
    for d in dirs:
        if d not in train:
            out[d.name] = execute_run(str(d), evaluate)
    wall = round(time.time() - t0, 2)
    for d in dirs:  # the group's wall time, shared by its runs
        out[d.name].update(
            wall_s=round(wall / len(dirs), 2),
            group_wall_s=wall,
            group=len(dirs),
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    return out


def plan_tasks(runs: list[dict], engine: str, group_size: int | None = None) -> list[list[dict]]:
    """The sweep's runs as tasks: one run each (per-run), or a setting's seeds in groups of at most
    `group_size` (grouped), in the sweep's order of settings."""
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "per-run":
        return [[r] for r in runs]
    size = int(group_size or GROUP_SIZE)
    if size < 1:
        raise UserError(f"group size must be at least 1, got {group_size}")
    by_setting: dict = {}
    for r in runs:
        by_setting.setdefault(json.dumps(r["settings"], sort_keys=True), []).append(r)
    tasks = []
    for same in by_setting.values():
        n = -(-len(same) // size)  # as few groups as the size allows, their sizes as even as can be
        tasks += [same[i::n] for i in range(n)]
    return tasks


def _note_where(run_dir: Path, node: str) -> None:
    """Add the node and host that trained a finished run to its status.json (the trainer has ended)."""
    from vae.runs.folder import read_status

    try:
        status = read_status(run_dir)
    except UserError:  # damaged: the run's own pages say why; the driver's record still has the node
        return
    if status.get("state") == "finished" and not status.get("node"):
        atomic_write_json(run_dir / "status.json", {**status, "node": node, "host": socket.gethostname()})


def _ray_task(run_dir: str, evaluate: str, threads: int) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    out = execute_run(run_dir, evaluate, threads, node=ctx.get_node_id())
    out["node"] = ctx.get_node_id()
    out["gpus"] = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]  # the GPU(s) Ray gave this run
    return out


def _ray_group_task(run_dirs: list[str], evaluate: str, threads: int) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    out = execute_group(run_dirs, evaluate, threads, node=ctx.get_node_id())
    gpus = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]
    for rec in out.values():
        rec.update(node=ctx.get_node_id(), gpus=gpus)
    return out


class _Status(HeartbeatFile):
    """The sweep's status.json, rewritten by the driver at each change (`update`, `record`) and every HEARTBEAT_S."""

    def __init__(self, sweep_dir: Path):
        old = sweep.read_status(sweep_dir)
        data = {
            "state": "running",
            "message": "starting Ray",
            "driver_pid": os.getpid(),
            "started": time.time(),
            "runs": old.get("runs") or {},
            "history": old.get("history", []),
        }
        super().__init__(
            sweep_dir / "status.json", data, every=HEARTBEAT_S, write_fn=lambda d: sweep.write_status(sweep_dir, d)
        )

    def record(self, name: str, **fields):
        """Change one run's fields and write the file now."""
        with self.lock:
            self.data["runs"].setdefault(name, {}).update(fields)
            self._write_locked()


LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _init_ray(address: str | None, cpus: int | None):
    """Connect to the cluster the user named (--ray-address or RAY_ADDRESS), or start a local Ray that
    listens on loopback only.

    Ray on Linux gives a local instance the machine's outward address and opens its GCS, raylet,
    worker and agent ports to the network. Its single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
    Ray's default on macOS and Windows) makes the node's address 127.0.0.1, and Ray then binds every
    server to loopback. The variable is read when Ray is imported, so it is set before the import, and
    the node's address is checked after the start: a local Ray that is reachable from the network is
    shut down and refused.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address:
        os.environ[LOCAL_ONLY_ENV] = "0"
    import ray

    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    runtime_env = {"env_vars": {"PYTHONPATH": lab_pythonpath()}}
    t0 = time.time()
    if address:
        ray.init(address=address, runtime_env=runtime_env, **kwargs)
    else:
        ray.init(num_cpus=cpus or os.cpu_count() or 1, runtime_env=runtime_env, **kwargs)
        outward = [
            n.get("NodeManagerAddress") for n in ray.nodes() if not is_loopback_address(n.get("NodeManagerAddress"))
        ]
        if outward:
            ray.shutdown()
            raise UserError(
                f"the local Ray started on {outward[0]}, reachable from the network (Ray was imported "
                f"before {LOCAL_ONLY_ENV}=0 could be set); start the sweep in a fresh process "
                "(python -m vae sweep), or name a cluster with --ray-address"
            )
    return ray, time.time() - t0


def run_sweep(
    sweep_dir,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_run: int | None = None,
    say=print,
    engine: str = "per-run",
    group_size: int | None = None,
) -> dict:
    """Train and evaluate every run of the sweep that is not done; returns the final status.

    `engine`: "per-run" (the default: each task trains one run, vae.training.train) or "grouped" (each task
    trains up to `group_size` seeds of one setting as one grouped model, vae.training.grouped)."""
    require_writable("run a sweep")
    sweep_dir = Path(sweep_dir).resolve()
    doc = sweep.read_sweep(sweep_dir)
    st = sweep.sweep_state(sweep_dir)
    if st.get("state") in ("running", "stopping") and st.get("driver_pid") != os.getpid():
        raise UserError(
            f"sweep {sweep_dir.name} is already {st['state']} in driver pid {st.get('driver_pid')}; "
            "stop it first or wait"
        )
    (sweep_dir / "stop").unlink(missing_ok=True)
    evaluate = doc.get("evaluate", "quick")
    todo = [r for r in doc["runs"] if not sweep.run_done(sweep.run_dir_of(sweep_dir, r), evaluate)]
    tasks = plan_tasks(todo, engine, group_size)
    for r in todo:  # a stop asked of an earlier driver's runs does not stop this one's
        (sweep.run_dir_of(sweep_dir, r) / "stop").unlink(missing_ok=True)
    status = _Status(sweep_dir)
    status.start_heartbeat()
    try:
        if not todo:
            sweep.write_results(sweep_dir, sweep.result_rows(sweep_dir, doc, status.data))
            status.update(state="finished", message=f"all {len(doc['runs'])} runs are done", finished=time.time())
            return dict(status.data)
        return _drive(sweep_dir, doc, tasks, status, address, workers, cpus_per_run, evaluate, say, engine)
    except BaseException as e:
        status.update(
            state="failed" if not isinstance(e, KeyboardInterrupt) else "stopped",
            message=f"{type(e).__name__}: {e}; resume the sweep to continue",
        )
        raise
    finally:
        status.stop_heartbeat()


def _drive(sweep_dir, doc, tasks, status, address, workers, cpus_per_run, evaluate, say, engine="per-run") -> dict:
    todo = [r for t in tasks for r in t]
    ray, t_init = _init_ray(address, None)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        per_run = int(cpus_per_run or (doc.get("resources") or {}).get("cpus_per_run") or 1)
        per_run = max(1, min(per_run, cpus))
        workers = int(workers or default_workers(cpus, per_run))
        say(
            f"ray: {cpus} CPU(s) on {len(ray.nodes())} node(s), started in {t_init:.1f} s; "
            f"{len(todo)} of {len(doc['runs'])} runs to do as {len(tasks)} task(s) ({engine} engine), "
            f"{workers} at a time, {per_run} CPU(s) each"
        )
        history = status.data.setdefault("history", [])
        history.append(
            {
                "driver_pid": os.getpid(),
                "started": time.time(),
                "ray_init_s": round(t_init, 2),
                "cpus": cpus,
                "workers": workers,
                "cpus_per_run": per_run,
                "todo": len(todo),
                "engine": engine,
                "tasks": len(tasks),
            }
        )
        status.update(message=f"{len(todo)} runs to do", workers=workers, cpus_per_run=per_run, cpus=cpus)
        gpus = float((doc.get("resources") or {}).get("gpus_per_run") or 0)
        env = {**_thread_env(per_run), "PYTHONPATH": lab_pythonpath()}
        opts = dict(
            num_cpus=per_run,
            num_gpus=gpus,
            max_retries=TASK_RETRIES,
            retry_exceptions=False,
            runtime_env={"env_vars": env},
        )
        task = ray.remote(_ray_task).options(**opts)
        group_task = ray.remote(_ray_group_task).options(**opts)
        queue, in_flight, failed = list(tasks), {}, 0
        stopping = False
        while queue or in_flight:
            if not stopping and (sweep_dir / "stop").exists():
                stopping = True
                queue.clear()
                for ref, runs in in_flight.items():
                    for run in runs:
                        sweep.request_stop_run(sweep.run_dir_of(sweep_dir, run))
                status.update(
                    state="stopping",
                    message="stopping: queued runs will not start; running runs stop after their current batch",
                )
            while queue and len(in_flight) < workers:
                runs = queue.pop(0)
                for run in runs:
                    rec = status.data["runs"].get(run["name"], {})
                    sweep.mark_resumed(
                        sweep.run_dir_of(sweep_dir, run), os.getpid(), doc.get("name", "")
                    )  # not "failed"
                    status.record(run["name"], attempts=int(rec.get("attempts", 0)) + 1, submitted=time.time())
                dirs = [str(sweep.run_dir_of(sweep_dir, run)) for run in runs]
                ref = (
                    task.remote(dirs[0], evaluate, per_run)
                    if engine == "per-run"
                    else group_task.remote(dirs, evaluate, per_run)
                )
                in_flight[ref] = runs
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                runs = in_flight.pop(ref)
                try:
                    got = ray.get(ref)
                    outs = {runs[0]["name"]: got} if engine == "per-run" else got
                    for run in runs:
                        out = outs[run["name"]]
                        lost = float(status.data["runs"].get(run["name"], {}).get("lost_s") or 0.0)  # failed attempts
                        status.record(
                            run["name"],
                            node=out.get("node"),
                            host=out.get("host"),
                            wall_s=round(out["wall_s"] + lost, 2),
                            last_attempt_s=out["wall_s"],
                            state=out["state"],
                            trained=out["trained"],
                            gpus=out.get("gpus", []),
                            **({"group": out["group"], "group_wall_s": out["group_wall_s"]} if "group" in out else {}),
                        )
                        say(
                            f"{run['name']}: {out['state']} in {out['wall_s']:.1f} s on {out.get('host')} "
                            f"(node {str(out.get('node'))[:8]})"
                        )
                except Exception as e:  # the run failed (its status.json says why) or its worker died too often
                    failed += 1
                    for run in runs:
                        rec = status.data["runs"].get(run["name"], {})
                        lost = float(rec.get("lost_s") or 0.0) + max(
                            0.0, time.time() - float(rec.get("submitted") or time.time())
                        )
                        status.record(
                            run["name"],
                            state="failed",
                            error=f"{type(e).__name__}: {str(e)[:500]}",
                            lost_s=round(lost, 2),
                        )
                        say(f"{run['name']}: failed ({type(e).__name__})")
                _refresh_results(sweep_dir, doc, status)
        _refresh_results(sweep_dir, doc, status)
        counts = sweep.progress(sweep_dir, doc)
        done = sum(1 for r in doc["runs"] if sweep.run_done(sweep.run_dir_of(sweep_dir, r), evaluate))
        if stopping:
            state, msg = "stopped", f"stopped by request; {done} of {len(doc['runs'])} runs done; resume to continue"
        elif done == len(doc["runs"]):
            state, msg = (
                "finished",
                f"all {done} runs finished and evaluated" if evaluate != "none" else f"all {done} runs finished",
            )
        else:
            state, msg = (
                "failed",
                (
                    f"{done} of {len(doc['runs'])} runs done; {counts} - see each failed run's "
                    "status; resume the sweep to retry them"
                ),
            )
        status.update(state=state, message=msg, finished=time.time(), counts=counts)
        say(f"sweep {state}: {msg}")
        return dict(status.data)
    finally:
        ray.shutdown()


def _refresh_results(sweep_dir, doc, status) -> None:
    sweep.write_results(sweep_dir, sweep.result_rows(sweep_dir, doc, status.data))
