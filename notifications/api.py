"""Devices, the inbox and notification preferences."""

from ninja import Router

router = Router()
