import json
from pathlib import Path

from auth.sms import read_outbox, send_sms


def test_file_backend_appends_one_json_line_per_message(outbox_dir: Path, settings) -> None:
    settings.SMS_BACKEND = "file"
    first = send_sms("+84912345678", "Mã xác thực của bạn là 123456", purpose="otp.register")
    send_sms("+84987654321", "Xin chào", purpose="notice.test")
    lines = (outbox_dir / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["id"] == first
    assert record["to"] == "+84912345678"
    assert record["text"] == "Ma xac thuc cua ban la 123456"  # as sent: without diacritics
    assert record["purpose"] == "otp.register"
    assert [m["to"] for m in read_outbox()] == ["+84912345678", "+84987654321"]


def test_empty_outbox_reads_as_no_messages(outbox_dir: Path) -> None:
    assert read_outbox() == []
