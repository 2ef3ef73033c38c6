"""VAE Disentanglement Lab: the library behind the dashboard (no module here imports streamlit).

Its folders are layers, from the top of the dependency order to the bottom; a folder imports only those
below it (`docs/layout.md` has the module table; `lint-imports` checks the order):
  cli, __main__       -- `python -m vae ...` and the `vae-lab` command
  sweeps              -- settings x seeds: planned into a sweep folder, run on Ray, reported over seeds
  jobs                -- processes: trainers started, queued and stopped; the standby; evaluations; deletes
  training, views     -- the training loop and the evaluation of a run; what the pages draw and say
  runs                -- run folders, TrainConfig, the index of run summaries
  model, measures, data -- the Keras VAE and its losses and methods; alignment, metrics and statistics
                         (never TensorFlow); datasets, renderers and presets
  base                -- user errors, atomic writes, paths, safety, registries, loading TensorFlow quietly
"""

__version__ = "0.1.0"
