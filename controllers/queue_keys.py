"""Work-queue key kinds."""

PCS = "pcs"
PCSG = "pcsg"
PCLQ = "pclq"
