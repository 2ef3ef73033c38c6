"""VAE Disentanglement Lab: the library behind the dashboard.

Modules, from the top of the dependency order to the bottom (README "Library layout";
`.importlinter` checks it; none imports streamlit):
  cli, __main__ -- `python -m vae ...` and the `vae-lab` command
  jobs          -- launching, stopping and watching trainer processes (no TensorFlow)
  standby       -- warm standby trainers (TensorFlow only inside the standby process)
  train         -- the training loop: Keras `fit` and the callback that writes the run folder
  evaluate      -- `python -m vae evaluate`: encode every split, measure, write evaluation.json
  inference     -- load a run's model; encode, reconstruct, decode in batches
  model         -- the Keras 3 VAE: Sampling, the networks of each architecture, the model
  losses, fast_layers -- the loss terms (keras.ops); exact, faster rewrites of three Keras layers
  plots, metrics, datasets, config -- figures; disentanglement metrics; dataset folders; TrainConfig
  analysis, data, runs, runtime -- factor and PCA alignment, transects, the hole; dataset specs and presets; the run
                  folder and run states; loading TensorFlow quietly
  registry, fileio, paths, render -- named choices (architectures, entanglement terms, loss terms);
                  atomic writes; the data root; the image renderers
  errors        -- UserError
"""

__version__ = "0.1.0"
