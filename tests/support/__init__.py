"""Helpers shared by several test folders: tiny models and bundles, the in-process CLI."""
