"""Service: one router per resource."""
