"""Datasets: the renderers (starfish, sprites), the presets and their planning and ground truth, and the dataset folder format (never imports TensorFlow)."""
