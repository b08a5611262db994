"""Training: loss, optimisation schedule, checkpoint rotation, the one training loop and the
translation task."""
