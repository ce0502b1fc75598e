"""Outer-boundary fakes that speak the real wire formats, each runnable as a process."""
