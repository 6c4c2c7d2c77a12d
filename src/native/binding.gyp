# The two optional addons, built by scripts/build-addons.mjs at npm install:
#   fsscan.c  a directory listed and every name in it lstat'ed in one call (the scan);
#   fsio.c    a small file read, or created, given its metadata and placed, in one call (the
#             pool's workers); and a piece's XXH64, with xxHash's header from vendor/.
# -ffp-contract=off: mtimeMs must be computed exactly as Node computes it (a multiply and an
# add, each rounded), never as one fused multiply-add, or a rescan would see every file as
# changed on a CPU whose baseline has FMA (aarch64).
{
  "targets": [
    {
      "target_name": "fsscan",
      "sources": ["fsscan.c"],
      "cflags": ["-O2", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra"]
    },
    {
      "target_name": "fsio",
      "sources": ["fsio.c"],
      "cflags": ["-O2", "-std=gnu11", "-ffp-contract=off", "-Wall", "-Wextra"]
    }
  ]
}
