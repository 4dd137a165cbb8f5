"""Running a solve: the driver loop (`run`), failed requests asked again (`failures`), child
processes that die with us (`procs`), engine output to a file (`enginelog`) and live Prometheus
counters (`metrics`). This file imports nothing, so heavy imports stay lazy."""
