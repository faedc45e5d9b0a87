"""Benchmarks of pystargz against the Go reference; each runs once as a smoke test in the test suite."""
