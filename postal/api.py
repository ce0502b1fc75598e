"""Addresses, quotes and postal delivery bookings."""

from ninja import Router

router = Router()
