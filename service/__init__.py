"""Service: the HTTP translation server (FastAPI). Built by `service.main:create_app`."""
