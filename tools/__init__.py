"""Tooling around the engine, not shipped in its wheel: what scripts/setup, the test
harness and the benchmarks need to make a machine ready (images, compose plugin)."""
