"""Support console: account look-up and audited resets."""

from ninja import Router

router = Router()
