"""NVIDIA ComputeDomains (multi-node NVLink / IMEX) for grove-py: the model, the pure pieces of a controller
that turns each ComputeDomain into its channel ResourceClaimTemplate and status, and the node-side
ResourceSlice that offers IMEX channels on simulated nodes.

`grove.computedomain.controller` holds the kopf handlers; importing it registers them.
"""
