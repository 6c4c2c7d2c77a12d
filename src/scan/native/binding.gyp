# The scan addon (fsscan.c), built by scripts/build-scan-addon.mjs at npm install.
# -ffp-contract=off: mtimeMs must be computed exactly as Node computes it (a multiply and an
# add, each rounded), never as one fused multiply-add, or a rescan would see every file as
# changed on a CPU whose baseline has FMA (aarch64).
{
  "targets": [
    {
      "target_name": "fsscan",
      "sources": ["fsscan.c"],
      "cflags": ["-O2", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra"]
    }
  ]
}
