{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["native/udp-batch/udp_batch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["native/udp-batch/udp_batch.c"]}]]
    }
  ]
}
