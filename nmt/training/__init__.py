"""Training: loss, optimisation schedule, checkpoint rotation and the Trainer."""
