"""Sweeps: a grid of settings x seeds planned into a sweep folder, driven on Ray (local or a cluster), and reported as distributions over seeds."""
