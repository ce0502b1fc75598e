"""Fakes of the outer-boundary providers (FCM, SMS gateway, carrier), as real HTTP
servers; and the process harness the end-to-end tests and the benchmarks share.

Never imported by the apps: see fakes/README.md.
"""
