"""Fleet tests: keel processes in Linux network namespaces (see fleetlib.py)."""
