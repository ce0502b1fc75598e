"""`websocat URL` for the first-journey guide's test: prints each text frame on a line.

The guide tells developers to use websocat; Debian 12 has no package of it, so the
smoke test puts this in its place (same call, same output: one message per line,
until the server closes the socket or the process is stopped).
"""

from __future__ import annotations

import sys

from websockets.sync.client import connect


def main(argv: list[str]) -> int:
    [url] = [arg for arg in argv if not arg.startswith("-")]
    with connect(url, open_timeout=10) as socket:
        for message in socket:
            text = message if isinstance(message, str) else message.decode()
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
