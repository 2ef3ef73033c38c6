"""The trainer (one run folder, trained by Keras's fit with callbacks that write the folder) and the evaluation of a trained run."""
