"""rf-desktop's benchmarks. Each module prints its figures; BENCHMARKS.md records them with the machine."""
