"""Grove's bundled DRA node driver: a kubelet plugin compatible with NVIDIA's ``gpu.nvidia.com`` driver.

Modules, one concept each: ``devices`` (device model -> ResourceSlice devices), ``backends`` (NVML or
simulated discovery and per-device prepare), ``slices`` (ResourceSlice building and publication),
``claims`` (reading ResourceClaims), ``opaqueconfig`` (``resource.nvidia.com/v1beta1`` configs), ``cdi``
(CDI spec files), ``checkpoint`` (crash-safe record of prepared claims), ``fsutil`` (atomic writes),
``prepare`` (the prepare/unprepare state machine), ``mps``/``mps_standin`` (MPS control daemons per claim),
``driverfiles`` (driver libraries/binaries for CDI, as the container toolkit finds them), ``imex``
(compute-domain.nvidia.com IMEX channels), ``nodelease`` (one driver per node), ``cleanup`` (stale-claim collection),
``registration``/``service``/``health`` (gRPC servers), ``plugin`` (process wiring), ``commands`` (CLI),
``kube`` (API client helpers), ``kubeletclient`` (the kubelet's side of the protocol, for tests and
benchmarks). Generated gRPC stubs live in ``proto`` (``proto/generate.sh``).
"""
