"""Grove-compatible workload API for AI inference on Kubernetes."""
