"""Pure expansion of a PodCliqueSet into the Kubernetes objects Grove would create.

Every function here is pure: it takes a PodCliqueSet (as the pydantic model or JSON) plus the observed state
it needs, and returns plain Kubernetes JSON dicts. The operator (`controllers/`) and `grove render` both call
this code, so what `grove render` prints is exactly what the operator creates (minus live-only fields).
"""
