"""Text handling around the model: protected spans (and, later, segmentation and markup)."""
