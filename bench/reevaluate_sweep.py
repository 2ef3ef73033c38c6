"""Re-evaluate every run of a sweep with this code (quick: no generator metrics, reference DCI), then rewrite its
results.csv, so that every score and its chance level come from one version of the measures.

    VAE_LAB_HOME=... python bench/reevaluate_sweep.py SWEEP_FOLDER
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vae.sweeps import sweep  # noqa: E402
from vae.training.evaluate import evaluate_run  # noqa: E402

sweep_dir = sys.argv[1]
t0 = time.time()
for run in sweep.read_sweep(sweep_dir)["runs"]:
    t = time.time()
    evaluate_run(sweep.run_dir_of(sweep_dir, run), generator_metrics=False)
    print(run["name"], f"{time.time() - t:.1f} s", flush=True)
sweep.write_results(sweep_dir)
print(f"done in {time.time() - t0:.0f} s", flush=True)
