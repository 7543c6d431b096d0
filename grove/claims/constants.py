"""Names the claims code shares with NVIDIA's DRA driver and with Grove.

They are compatibility surface: DeviceClasses, CEL selectors and ComputeDomains written for NVIDIA's driver,
and claim names Grove users already see, keep working only if these strings are exact.
"""

from typing import Final

RESOURCE_API_VERSION: Final = "resource.k8s.io/v1"
KIND_RESOURCE_CLAIM: Final = "ResourceClaim"
KIND_RESOURCE_CLAIM_TEMPLATE: Final = "ResourceClaimTemplate"

# NVIDIA's GPU driver and the DeviceClasses its chart installs (dra.md §3.2).
GPU_DRIVER: Final = "gpu.nvidia.com"
GPU_DEVICE_CLASS: Final = "gpu.nvidia.com"
MIG_DEVICE_CLASS: Final = "mig.nvidia.com"

# Request names inside generated templates; containers may reference them in resources.claims[].request.
GPU_REQUEST: Final = "gpu"
MIG_REQUEST: Final = "mig"

# grove-py: pod-local name of the claim made from a clique's `devices` short spec.
DEVICES_CLAIM_NAME: Final = "grove-devices"
# Suffix of the template/claim object made from a clique's `devices`: `<owner>-<clique>-devices`.
DEVICES_TEMPLATE_SUFFIX: Final = "devices"

# Grove auto-MNNVL (GREP-417): pod claim name and the opt-out value of the grove.io/mnnvl-group annotation.
MNNVL_CLAIM_NAME: Final = "mnnvl-claim"
MNNVL_OPT_OUT: Final = "none"
# Grove's component label value for ComputeDomains (operator/internal/mnnvl/computedomain).
COMPONENT_COMPUTE_DOMAIN: Final = "pcs-computedomain"

# Resources counted as "this container uses GPUs" for auto-MNNVL (Grove checks the device-plugin resource).
GPU_RESOURCE_NAME: Final = "nvidia.com/gpu"

# Pod-local claim names must be DNS labels.
MAX_POD_CLAIM_NAME: Final = 63
