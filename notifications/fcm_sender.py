"""The asynchronous FCM v1 sender behind `notifications.fcm.FcmGateway`.

firebase-admin still does everything but the wire: it builds and validates the
messages (`messaging.Message` and its encoder), owns the credentials (google-auth
service-account credentials, refreshed with google-auth's own code) and maps
every error answer (`_MessagingService._handle_fcm_error`, the same function its
`send_each` uses), so the payload and the exceptions are the library's. Only the
transport is ours: one event loop per process in a thread of its own, with one
pooled aiohttp session per configuration, shared by every send job of the
process.

Why (measured against the loopback fake, `python -m fakes.fcm`): firebase-admin's
`send_each` runs a thread per message over requests and cost the worker 1.0 to
1.3 ms of CPU per push; `send_each_async` 10.8 ms (httpx's pool bookkeeping, and
its client is bound to the first event loop). aiohttp on a loop that outlives the
jobs costs a few tenths of a millisecond (figures in docs/performance.md).

The OAuth2 access token is shared by every send of the process: it is fetched
once per expiry (google-auth's "stale" point, 3 min 45 s before it ends), by one
fetch that every send waiting for it shares, instead of once per thread that
found it missing (4 to 14 fetches per run before). A 401 makes the sender fetch a
new token once (unless another send already did) and repeat that request, as
google-auth's `AuthorizedSession` does; a 401 cannot have delivered anything.

Like the requests transport it replaces, the sender repeats a request only when
the connection could not be made (nothing left the machine); it never repeats
one whose answer was lost or late: FCM has no idempotency key, so the delivery
code decides (see notifications/delivery.py).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import requests
import requests.structures
from firebase_admin import App, _http_client, exceptions, messaging
from google.auth.credentials import TokenState
from yarl import URL

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Tries of a request whose connection could not be made (the first one included).
CONNECT_TRIES = 2
# How often a caller waiting for answers checks whether the call failed as a whole.
ANSWER_POLL_SECONDS = 0.5


class EventLoopThread:
    """An event loop running in a daemon thread, for synchronous callers.

    One per process (`sender_loop`): a forked child starts its own, since a loop
    and its sockets do not survive a fork.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="fcm-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result (never from the loop)."""
        return self.submit(coroutine).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start `coroutine` on the loop; its future (never waited for from the loop)."""
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("the FCM sender cannot wait for itself")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    @property
    def alive(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    def stop(self, sessions: Sequence[aiohttp.ClientSession]) -> None:
        if not self.alive:
            return

        async def close() -> None:
            for session in sessions:
                await session.close()

        try:
            self.run(close(), timeout=5)
        except Exception:  # exiting anyway: a socket left open is harmless now
            logger.debug("FCM sessions not closed at exit", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class SharedToken:
    """The app's OAuth2 access token, fetched once per expiry for every send of the process.

    Lives on the sender's loop. The fetch itself is google-auth's blocking code
    (`credentials.refresh`, then `before_request`, which also starts google-auth's
    regional access boundary lookup) in the loop's thread pool; every send that
    needs a token meanwhile waits for that one fetch.
    """

    def __init__(self, credential: Any, url: str, static_headers: dict[str, str]) -> None:
        self.credential = credential
        self.url = url
        self.static_headers = static_headers
        self.fetches = 0
        self._request = google.auth.transport.requests.Request()
        self._fetching: asyncio.Future[None] | None = None

    async def headers(self) -> dict[str, str]:
        """The request headers with a token that is fresh now."""
        if self.credential.token_state is not TokenState.FRESH:
            await self._fetch_once()
        return self._apply()

    async def renew(self, rejected: dict[str, str]) -> dict[str, str]:
        """After a 401 for `rejected`: a new token, unless another send already got one."""
        if self._apply().get("authorization") == rejected.get("authorization"):
            await self._fetch_once()
        return self._apply()

    def _apply(self) -> dict[str, str]:
        headers = dict(self.static_headers)
        self.credential.apply(headers)
        return headers

    async def _fetch_once(self) -> None:
        if self._fetching is None:
            loop = asyncio.get_running_loop()
            fetching = asyncio.ensure_future(loop.run_in_executor(None, self._fetch))
            fetching.add_done_callback(self._fetched)
            self._fetching = fetching
        try:
            await asyncio.shield(self._fetching)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise exceptions.UnknownError(
                message=f"Could not get an OAuth2 access token: {exc}", cause=exc
            ) from exc

    def _fetched(self, future: asyncio.Future[None]) -> None:
        self._fetching = None
        if not future.cancelled():
            future.exception()  # retrieved here: the waiters may all have gone

    def _fetch(self) -> None:
        self.fetches += 1
        self.credential.refresh(self._request)
        # With a valid token this only starts google-auth's after-refresh work.
        self.credential.before_request(self._request, "POST", self.url, {})


class InFlight:
    """The requests the process's sender may have out at once: its connector's limit
    (FCM_MAX_CONNECTIONS), shared by every send job of the process.

    A send job takes slots before it marks a slice `sending` (notifications/delivery.py),
    so that every row marked goes to a connection at once: without them, the jobs of
    one worker (FCM_CONCURRENCY rows a slice each, WORKER_CONCURRENCY jobs) marked more
    rows than the connector could carry, and the rest waited in its queue, `sending`,
    to be closed INTERRUPTED, unsent, by a crash. A job takes the room there is, as
    much as it wants at most, and cuts its slice to it; each slot comes back on the
    sender's loop as soon as its request has its answer. A job waits until a quarter
    of the connections is free (or all it wants, or one slot): slots taken one by one
    as answers come made slices of a row or two, each costing a slice's statements
    (PostgreSQL's CPU per delivery went up by a third, docs/performance.md).
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.free = self.limit
        self.waiting = 0  # jobs waiting for slots now
        self._changed = threading.Condition()

    def take(self, wanted: int, timeout: float) -> Slots | None:
        """The free slots, `wanted` at most (and the limit), once `least` are free;
        None when they were not within `timeout` seconds."""
        most = max(1, min(wanted, self.limit))
        least = self.least(most)
        with self._changed:
            self.waiting += 1
            try:
                if not self._changed.wait_for(lambda: self.free >= least, timeout):
                    return None
            finally:
                self.waiting -= 1
            count = min(most, self.free)
            self.free -= count
        return Slots(self, count)

    def least(self, wanted: int) -> int:
        """The fewest slots a job takes when it wants `wanted`: a quarter of the limit,
        no more than `wanted`, one at least."""
        return max(1, min(wanted, self.limit // 4))

    def _give_back(self, count: int) -> None:
        with self._changed:
            self.free = min(self.limit, self.free + count)
            self._changed.notify_all()


class Slots:
    """Slots taken from `InFlight`, `count` still held. The sender's loop brackets
    each request with `start` and `done`: `done` gives that request's slot back as
    soon as its answer is in (or it failed, timed out or was cancelled), before the
    answer reaches the job. The job's `close` gives back the slots no request holds
    (requests never made: a call that failed as a whole, messages the encoder
    refused); a request still out then keeps its slot until its own `done`. So a slot
    comes back once, and only when no request uses it: never more than `count` in
    all, whatever the order. Thread-safe (the loop and the job's thread)."""

    def __init__(self, pool: InFlight, count: int) -> None:
        self.pool = pool
        self.count = count  # held: not given back yet
        self.out = 0  # requests started and not done
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.out += 1

    def done(self) -> None:
        with self._lock:
            self.out -= 1
            # A request started after `close` (beyond the slots held) has none to give.
            freed = 1 if self.count > self.out else 0
            self.count -= freed
        if freed:
            self.pool._give_back(freed)

    def give_back(self, count: int) -> None:
        """Give back up to `count` of the slots no request holds."""
        with self._lock:
            freed = max(0, min(count, self.count - self.out))
            self.count -= freed
        if freed:
            self.pool._give_back(freed)

    def close(self) -> None:
        self.give_back(self.count)


class AsyncFcmSender:
    """Sends encoded FCM v1 messages for one firebase-admin app; thread-safe.

    `send_each` takes what firebase-admin's encoder made of each message and
    answers one `messaging.SendResponse` per message, in order, as
    `messaging.send_each` does.
    """

    def __init__(
        self, app: App, url: str, timeout: float, max_connections: int, loop: EventLoopThread
    ) -> None:
        self.loop = loop
        self.service = messaging._get_messaging_service(app)
        self.url = URL(url)
        self.timeout = timeout
        self.max_connections = max(1, max_connections)
        self.in_flight = InFlight(self.max_connections)
        headers = {
            **self.service._fcm_headers,
            **_http_client.METRICS_HEADERS,
            "Content-Type": "application/json; charset=utf-8",
        }
        self.token = SharedToken(self.service._credential, url, headers)
        self.proxy = _proxy_for(url)
        self.session: aiohttp.ClientSession = self.loop.run(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
        # Waiting for a pooled connection is not part of a request's time: only the
        # connect and each read are bounded, as with requests' timeout.
        timeout = aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, raise_for_status=False
        )

    def send_each(
        self, messages: Sequence[dict[str, Any]], concurrency: int
    ) -> list[messaging.SendResponse]:
        bodies = [
            json.dumps({"message": message}, ensure_ascii=False, separators=(",", ":")).encode()
            for message in messages
        ]
        if not bodies:
            return []
        return self.loop.run(self._send_all(bodies, max(1, concurrency)))

    def send_each_as_answered(
        self,
        messages: Sequence[dict[str, Any]],
        concurrency: int,
        gather_seconds: float,
        slots: Slots | None = None,
    ) -> Iterator[list[tuple[int, messaging.SendResponse]]]:
        """As `send_each`, but hands the answers over as they come: lists of (index,
        response), each with the answers that arrived within `gather_seconds` of its
        first (or fewer, when the last answer of the call came sooner). So the caller
        can record what FCM answered while slower requests of the same call are still
        out (a crash then leaves only those unknown). Raises what the whole call failed
        with (no access token) before any answer is given.

        The loop gathers them (`_Batches`) and wakes the caller once a batch: handing
        each answer over woke the caller's thread, which then waited for the
        interpreter lock, once per push. With `slots` (the caller's room among the
        process's connections, `InFlight`), each request gives its slot back on the
        loop once answered, not when its batch reaches the caller."""
        bodies = [
            json.dumps({"message": message}, ensure_ascii=False, separators=(",", ":")).encode()
            for message in messages
        ]
        if not bodies:
            return
        answers: queue.SimpleQueue[list[tuple[int, messaging.SendResponse]]] = queue.SimpleQueue()
        call = self.loop.submit(
            self._send_all(
                bodies, max(1, concurrency), batches=(answers.put, gather_seconds), slots=slots
            )
        )
        given = 0
        while given < len(bodies):
            try:
                batch = answers.get(timeout=ANSWER_POLL_SECONDS)
            except queue.Empty:
                if call.done():
                    call.result()  # the call failed as a whole: raise it here
                    if answers.empty():
                        raise RuntimeError("the FCM call ended without every answer") from None
                continue
            given += len(batch)
            yield batch

    async def _send_all(
        self,
        bodies: list[bytes],
        concurrency: int,
        batches: tuple[Callable[[list[tuple[int, messaging.SendResponse]]], None], float]
        | None = None,
        slots: Slots | None = None,
    ) -> list[messaging.SendResponse]:
        """Send `bodies`, `concurrency` at a time; with `batches` (a function and a
        number of seconds), also hand the answers to the function as they come, in
        batches (`_Batches`); with `slots`, each request holds one while it is out."""
        headers = await self.token.headers()
        results: list[messaging.SendResponse | None] = [None] * len(bodies)
        pending = iter(enumerate(bodies))
        gathered = _Batches(*batches) if batches is not None else None

        async def lane() -> None:
            for index, body in pending:
                if slots is None:
                    answer = await self._post(body, headers)
                else:
                    slots.start()
                    try:
                        answer = await self._post(body, headers)
                    finally:
                        slots.done()  # the connection is free: room for another job
                results[index] = answer
                if gathered is not None:
                    gathered.add((index, answer))

        try:
            await asyncio.gather(*(lane() for _ in range(min(concurrency, len(bodies)))))
        finally:
            if gathered is not None:
                gathered.flush()  # the last batch: nothing more will come
        return [result for result in results if result is not None]

    async def _post(self, body: bytes, headers: dict[str, str]) -> messaging.SendResponse:
        connect_tries = CONNECT_TRIES
        renewed = False
        while True:
            try:
                async with self.session.post(
                    self.url, data=body, headers=headers, proxy=self.proxy
                ) as response:
                    content = await response.read()
                    if response.status == 401 and not renewed:
                        renewed = True
                        headers = await self.token.renew(headers)
                        continue
                    if response.status < 300:
                        return _accepted(self.service, content)
                    return messaging.SendResponse(None, self._answer_error(response, content))
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                connect_tries -= 1
                if connect_tries > 0:
                    continue  # no connection was made: nothing was sent
                error: requests.RequestException = (
                    requests.exceptions.ConnectTimeout(str(exc))
                    if isinstance(exc, aiohttp.ConnectionTimeoutError)
                    else requests.exceptions.ConnectionError(str(exc))
                )
            except TimeoutError as exc:  # a read took longer than the timeout
                error = requests.exceptions.ReadTimeout(str(exc) or "Read timed out.")
            except aiohttp.ClientError as exc:  # the connection broke before an answer
                error = requests.exceptions.ConnectionError(str(exc) or type(exc).__name__)
            except exceptions.FirebaseError as exc:  # no token for the repeat after a 401
                return messaging.SendResponse(None, exc)
            return messaging.SendResponse(None, self.service._handle_fcm_error(error))

    def _answer_error(self, response: aiohttp.ClientResponse, content: bytes) -> Exception:
        """firebase-admin's exception for an error answer, from its own mapping."""
        answer = requests.Response()
        answer.status_code = response.status
        answer._content = content
        answer.headers = requests.structures.CaseInsensitiveDict(response.headers)
        answer.url = str(response.url)
        answer.encoding = "utf-8"
        error = requests.exceptions.HTTPError(
            f"{response.status} Error for url: {answer.url}", response=answer
        )
        mapped: Exception = self.service._handle_fcm_error(error)
        return mapped


class _Batches:
    """Answers gathered on the sender's loop and handed over in batches: a batch is
    handed `seconds` after its first answer came (a timer on the loop), or at once by
    `flush`."""

    def __init__(
        self, deliver: Callable[[list[tuple[int, messaging.SendResponse]]], None], seconds: float
    ) -> None:
        self.deliver = deliver
        self.seconds = seconds
        self.items: list[tuple[int, messaging.SendResponse]] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, item: tuple[int, messaging.SendResponse]) -> None:
        self.items.append(item)
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.seconds, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.items:
            items, self.items = self.items, []
            self.deliver(items)


def _accepted(service: Any, content: bytes) -> messaging.SendResponse:
    try:
        answer = json.loads(content)
        name = answer["name"]
    except (ValueError, TypeError, KeyError) as exc:
        # requests' JSON error for a 2xx that is not FCM's answer, mapped as send_each does.
        error = requests.exceptions.InvalidJSONError(f"Unexpected FCM answer: {exc}")
        return messaging.SendResponse(None, service._handle_fcm_error(error))
    return messaging.SendResponse({"name": name}, None)


def _proxy_for(url: str) -> str | None:
    """The proxy requests would use for `url` (HTTPS_PROXY, NO_PROXY...), chosen once."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    return str(proxy) if proxy else None


_state_lock = threading.Lock()
_senders_lock = threading.Lock()
_loop: EventLoopThread | None = None
_senders: dict[tuple[Any, ...], AsyncFcmSender] = {}


def sender_loop() -> EventLoopThread:
    """This process's sender loop, started on first use."""
    global _loop
    with _state_lock:
        if _loop is None or not _loop.alive:
            if _loop is not None and _loop.pid != os.getpid():
                _senders.clear()  # the parent's sessions: their sockets are not ours
            _loop = EventLoopThread()
        return _loop


def sender_for(
    key: tuple[Any, ...], app: App, url: str, timeout: float, max_connections: int
) -> AsyncFcmSender:
    """The sender of one configuration (`key`), made once per process."""
    loop = sender_loop()
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None or sender.loop is not loop:
            sender = _senders[key] = AsyncFcmSender(app, url, timeout, max_connections, loop)
        return sender


@atexit.register
def _close_at_exit() -> None:
    with _state_lock, _senders_lock:
        loop, sessions = _loop, [sender.session for sender in _senders.values()]
    if loop is not None:
        loop.stop(sessions)
