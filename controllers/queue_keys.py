"""Work-queue key kinds, and the hint of a PodCliqueSet pass that looks at no replica."""

PCS = "pcs"
PCSG = "pcsg"
PCLQ = "pclq"

# Work-queue hint of a PodCliqueSet pass for its own status only: it looks at no replica (`None` would make it a
# full pass over every replica, many times per second during a 5000-pod deploy, issue #13).
STATUS_ONLY = "status"
