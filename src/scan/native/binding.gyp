{
  "targets": [
    {
      "target_name": "fsscan",
      "sources": ["fsscan.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra"]
    }
  ]
}
