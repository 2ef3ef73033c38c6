"""Measures of what a model learned: factor and PCA alignment, MIG, DCI, SAP, modularity, total correlation, and statistics over seeds (numpy, scipy and scikit-learn; never TensorFlow)."""
