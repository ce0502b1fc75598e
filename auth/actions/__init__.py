"""Every state change of accounts, one function each, in one module per area.

- `accounts`: sign-up, the profile, citizen ID, phone number and passwords;
- `sign_in`: password checks with their limits, sign-in and its second step;
- `sessions`: device sessions and their tokens;
- `challenges`: SMS code challenges (issued, resent, spent) for the flows above;
- `second_factor`: the authenticator app (TOTP) and recovery codes;
- `notices`: the SMS notices to the owner that these changes queue with them;
- `national_sign_in`: sign-in with the national identity (VNeID, OpenID Connect),
  linking it to an account, unlinking;
- `organisations`: organisations, members, roles, invitations, the registry check;
- `support`: support staff look-ups and audited resets;
- `housekeeping`: deleting expired sign-in flows (hourly job).

Reads that authorise are in auth/access.py; handlers (auth/*api.py) parse,
authorise, call one of these and shape the answer.
"""
