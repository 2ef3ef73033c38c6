"""Processes: the launcher that starts, queues, stops and watches trainers, the warm standby trainer, evaluation processes, and deletes that must respect running runs."""
