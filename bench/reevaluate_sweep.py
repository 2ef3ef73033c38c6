"""Re-evaluate every run of a sweep (argv[1]) with this code (quick: no generator metrics, reference DCI), then rewrite
results.csv, so every score and its chance level come from one version of the measures."""
import sys, time
from vae.sweeps import sweep
from vae.training.evaluate import evaluate_run
sw = sys.argv[1]
t0 = time.time()
for r in sweep.read_sweep(sw)["runs"]:
    t = time.time()
    evaluate_run(sweep.run_dir_of(sw, r), generator_metrics=False)
    print(r["name"], f"{time.time() - t:.1f} s", flush=True)
sweep.write_results(sw)
print(f"done in {time.time() - t0:.0f} s", flush=True)
