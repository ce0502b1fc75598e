"""Sign-up, sign-in, sessions, TOTP and the account itself."""

from ninja import Router

router = Router()
