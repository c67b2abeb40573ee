"""Offline demo fixtures: a reproducible image set and a loopback HTTP server to fetch it from."""
