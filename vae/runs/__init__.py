"""Run folders: their format (config.json, status.json, metrics.jsonl ...), the training settings, and the index of run summaries the pages list (never imports TensorFlow)."""
