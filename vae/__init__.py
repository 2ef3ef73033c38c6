"""VAE Disentanglement Lab: the library behind the dashboard.

Modules (each importable alone; none imports streamlit):
  data      -- synthetic image families (starfish, sprites) and their presets (numpy, pillow)
  datasets  -- the dataset folder format: write, load, import, list, delete
  model     -- Keras 3 VAE architectures (`seed`, `burgess`), keras.ops only
  losses    -- reconstruction, KL and entanglement terms as pure functions
  config    -- TrainConfig: every training setting, validated (no TensorFlow)
  train     -- the training loop and the files it writes into a run folder
  runs      -- reading run folders (no TensorFlow)
  jobs      -- launching, stopping and watching trainer processes (no TensorFlow)
  analysis  -- factor and PCA alignment, curvature of transects, the hole (numpy, SciPy, scikit-learn)
  metrics   -- disentanglement metrics (numpy, scikit-learn)
  cli       -- `python -m vae ...`
"""

__version__ = "0.1.0"
