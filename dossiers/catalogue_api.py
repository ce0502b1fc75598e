"""The procedure catalogue: agencies and procedures."""

from ninja import Router

router = Router()
