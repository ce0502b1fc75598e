"""Fakes of the outer-boundary providers (FCM, SMS gateway, carrier, payment gateway,
national identity provider, business registry), as real HTTP servers that speak the
real wire formats, each runnable as a process; and the process harness the end-to-end
tests and the benchmarks share.

Never imported by the apps: see fakes/README.md.
"""
