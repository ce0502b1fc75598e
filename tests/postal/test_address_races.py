"""A saved address deleted while it is booked or edited: no 500, no address brought back.

Each test holds one request at a chosen query (a `connection.execute_wrapper` in
its thread), runs the delete in another thread until it finishes or waits for a
lock held by the first, then lets the first one go.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection

from dossiers.models import DossierEvent
from postal.models import DeliveryBooking, SavedAddress
from tests.concurrency import until_a_lock_wait
from tests.conftest import ApiResponse
from tests.postal.conftest import CA_MAU_COMMUNE, HANOI_COMMUNE, Citizen, make_address

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS_TABLE = SavedAddress._meta.db_table
DOSSIER_TABLE = "dossiers_dossier"
TIMEOUT = 30


class InThread:
    """`call()` in a thread of its own (own database connection)."""

    def __init__(self, call: Callable[[], ApiResponse]) -> None:
        self.result: ApiResponse | BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(call,))

    def _run(self, call: Callable[[], ApiResponse]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # a 500 the test client re-raises
            self.result = exc
        finally:
            connection.close()
            self.done.set()

    def start(self) -> InThread:
        self.thread.start()
        return self

    def response(self) -> ApiResponse:
        self.thread.join(TIMEOUT)
        assert self.done.is_set(), "request still running"
        assert isinstance(self.result, ApiResponse), repr(self.result)
        return self.result


class Held(InThread):
    """`call()` stopped at the first query `at(sql)` matches (`after` it ran, or before)
    until `release()`."""

    def __init__(
        self, call: Callable[[], ApiResponse], at: Callable[[str], bool], *, after: bool
    ) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()
        self.at, self.after = at, after
        super().__init__(lambda: self._held(call))

    def _held(self, call: Callable[[], ApiResponse]) -> ApiResponse:
        with connection.execute_wrapper(self._wrapper):
            return call()

    def _wrapper(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        stop = not self.reached.is_set() and self.at(sql)
        if stop and not self.after:
            self._pause()
        result = execute(sql, params, many, context)
        if stop and self.after:
            self._pause()
        return result

    def _pause(self) -> None:
        self.reached.set()
        assert self.released.wait(TIMEOUT), "never released"

    def start(self) -> Held:
        super().start()
        assert self.reached.wait(TIMEOUT), "never reached the query to hold at"
        return self

    def release(self) -> None:
        self.released.set()


def run_until_done_or_blocked(call: Callable[[], ApiResponse]) -> InThread:
    """Start `call` and return once it has finished or waits for a row lock."""
    other = InThread(call).start()
    until_a_lock_wait(unless=other.done, timeout=TIMEOUT)
    return other


@contextmanager
def releasing(held: Held) -> Iterator[Held]:
    try:
        yield held
    finally:
        held.release()


def reads_the_address(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT") and f'FROM "{ADDRESS_TABLE}"' in sql


def locks_the_dossier(sql: str) -> bool:
    return f'FROM "{DOSSIER_TABLE}"' in sql and "FOR UPDATE" in sql


def delete(citizen: Citizen, address: SavedAddress) -> Callable[[], ApiResponse]:
    return lambda: citizen.api.delete(f"/api/v1/postal/addresses/{address.id}")


def test_deleting_an_address_while_it_is_being_booked_waits_for_the_booking() -> None:
    citizen = Citizen()
    booking = Held(citizen.book, reads_the_address, after=True).start()
    with releasing(booking):
        deletion = run_until_done_or_blocked(delete(citizen, citizen.address))
    assert booking.response().status_code == 201
    assert deletion.response().status_code == 204
    assert not SavedAddress.objects.filter(pk=citizen.address.pk).exists()
    # The booking lets the address go and keeps its copy.
    made = DeliveryBooking.objects.get()
    assert (made.address_id, made.street, made.commune_code) == (None, "Số 12 phố Huế", "00070")


def test_booking_an_address_deleted_meanwhile_is_404() -> None:
    citizen = Citizen()
    booking = Held(citizen.book, locks_the_dossier, after=False).start()
    with releasing(booking):
        deletion = run_until_done_or_blocked(delete(citizen, citizen.address))
    assert deletion.response().status_code == 204
    response = booking.response()
    assert response.status_code == 404
    assert DeliveryBooking.objects.count() == 0
    assert not DossierEvent.objects.filter(type="delivery.booked").exists()


def test_changing_a_booking_to_an_address_deleted_meanwhile_is_404() -> None:
    citizen = Citizen()
    booking_id = citizen.book().json()["id"]
    new_address = make_address(citizen.user, CA_MAU_COMMUNE, street="Số 5 đường Trần Phú")
    change = Held(
        lambda: citizen.api.put(
            f"/api/v1/postal/bookings/{booking_id}/address", {"address_id": str(new_address.id)}
        ),
        locks_the_dossier,
        after=False,
    ).start()
    with releasing(change):
        deletion = run_until_done_or_blocked(delete(citizen, new_address))
    assert deletion.response().status_code == 204
    assert change.response().status_code == 404
    booking = DeliveryBooking.objects.get()
    assert (booking.revision, booking.address_id, booking.commune_code) == (
        1,
        citizen.address.pk,
        HANOI_COMMUNE,
    )
    assert DossierEvent.objects.filter(type="delivery.booked").count() == 1


def test_editing_an_address_while_it_is_deleted_does_not_bring_it_back() -> None:
    citizen = Citizen()
    body = {
        "recipient_name": "Lê Văn B",
        "phone": "0912345678",
        "street": "Số 1",
        "commune_code": HANOI_COMMUNE,
    }
    edit = Held(
        lambda: citizen.api.put(f"/api/v1/postal/addresses/{citizen.address.id}", body),
        reads_the_address,
        after=True,
    ).start()
    with releasing(edit):
        deletion = run_until_done_or_blocked(delete(citizen, citizen.address))
    assert edit.response().status_code == 200
    assert deletion.response().status_code == 204
    assert not SavedAddress.objects.filter(pk=citizen.address.pk).exists()
