"""The grove-py operator: thin kopf wiring over the pure expansion in `grove.expansion`."""
