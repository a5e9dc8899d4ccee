"""CSV export of the sync log: formula-safe cells, streaming with progress, atomic file replacement."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from rf_desktop.core import export
from rf_desktop.core.export import HEADER, export_log_csv, neutralise_cell
from rf_desktop.core.store import FAILED, WAITING, Referral, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "rf.sqlite3") as opened:
        yield opened


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\uff1dcmd()", "'\uff1dcmd()"),  # full-width equals sign
        ("Jane = VIP", "Jane = VIP"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_neutralise_cell(value: object, expected: str) -> None:
    assert neutralise_cell(value) == expected


def test_export_writes_header_rows_and_neutralised_cells(store: Store, tmp_path: Path) -> None:
    store.record_referral(Referral(rf_user_id=1, campaign_id=1, first_name="Zoë", email="zoe@example.com"))
    store.update(1, status=WAITING)
    store.log("info", "person created", "Created Pipedrive person Zoë.", rf_user_id=1, person_id=10)
    store.log(
        "error", "lead failed", "=cmd|'/c calc'!A0", rf_user_id=2, lead_id="9c6f3d2e-aaaa", is_test=True
    )
    store.log("warning", "retry", 'Line one,\n"quoted" line two', deal_id=77)
    dest = tmp_path / "log.csv"
    assert export_log_csv(store, dest) == 3
    assert dest.read_bytes().startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs
    rows = read_csv(dest)
    assert rows[0] == list(HEADER)
    assert rows[1][1:] == [
        "info", "Zoë", "zoe@example.com", "In Pipedrive", "person created", "10", "", "",
        "Created Pipedrive person Zoë.", "",
    ]  # fmt: skip
    assert rows[2][1:] == [
        "error", "", "", "", "lead failed", "", "9c6f3d2e-aaaa", "", "'=cmd|'/c calc'!A0", "yes",
    ]  # fmt: skip
    assert rows[3][9] == 'Line one,\n"quoted" line two'
    assert rows[1][0].endswith("Z")


def test_export_filters_like_the_window(store: Store, tmp_path: Path) -> None:
    store.log("info", "a", "fine")
    store.log("warning", "b", "slow down")
    store.log("error", "c", "broken down")
    dest = tmp_path / "log.csv"
    assert export_log_csv(store, dest, level="warning") == 2
    assert [r[5] for r in read_csv(dest)[1:]] == ["b", "c"]
    assert export_log_csv(store, dest, text="down", level="error") == 1
    assert [r[5] for r in read_csv(dest)[1:]] == ["c"]


def test_export_streams_and_reports_progress(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PROGRESS_EVERY", 10)
    for i in range(25):
        store.log("info", "step", f"row {i}")
    calls: list[tuple[int, int]] = []
    written = export_log_csv(
        store, tmp_path / "log.csv", progress=lambda done, total: calls.append((done, total))
    )
    assert written == 25
    assert calls == [(10, 25), (20, 25), (25, 25)]
    assert [r[9] for r in read_csv(tmp_path / "log.csv")[1:]] == [f"row {i}" for i in range(25)]


def test_export_of_an_empty_log_has_just_the_header(store: Store, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    assert export_log_csv(store, tmp_path / "log.csv", progress=lambda d, t: calls.append((d, t))) == 0
    assert read_csv(tmp_path / "log.csv") == [list(HEADER)]
    assert calls == [(0, 0)]


def test_export_to_an_open_stream(store: Store) -> None:
    store.log("info", "x", "+danger")
    out = io.StringIO()
    assert export_log_csv(store, out) == 1
    text = out.getvalue()
    assert not text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text)))[1][9] == "'+danger"


def test_a_failed_export_keeps_the_old_file_and_leaves_no_temp_file(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "log.csv"
    dest.write_text("the previous export", encoding="utf-8")
    store.log("info", "x", "y")

    def explode(done: int, total: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        export_log_csv(store, dest, progress=explode)
    assert dest.read_text(encoding="utf-8") == "the previous export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".log.csv")) == []


def test_os_errors_name_the_destination(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "no such folder" / "log.csv"
    with pytest.raises(FileNotFoundError) as caught:
        export_log_csv(store, dest)
    assert str(dest) in str(caught.value)
    assert caught.value.strerror == "No such file or directory", "the reason alone, for the callers' sentences"


def test_a_destination_that_cannot_be_replaced_fails_cleanly(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "log.csv"
    dest.mkdir()  # a folder where the file should go
    store.log("info", "x", "y")
    with pytest.raises(IsADirectoryError) as caught:
        export_log_csv(store, dest)
    assert caught.value.filename == str(dest) and caught.value.strerror == "Is a directory"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_export_never_contains_a_token(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "rf-secret-token-8d2c41"
    monkeypatch.setenv("RF_DESKTOP_REFERRAL_FACTORY_TOKEN", token)
    store.log("error", "auth", "Referral Factory refused the API token (401). Paste a new token.")
    store.log("info", "person created", "Created Pipedrive person Jane.", person_id=1)
    dest = tmp_path / "log.csv"
    export_log_csv(store, dest)
    assert token.encode() not in dest.read_bytes()


def test_each_row_names_its_referral_and_says_where_it_stands_in_the_windows_words(
    store: Store, tmp_path: Path
) -> None:
    store.record_referral(Referral(rf_user_id=7, campaign_id=1, first_name="王芳", email="wang@example.com"))
    store.update(7, status=FAILED, status_reason="Pipedrive refused it.", permanent=1)
    store.log("error", "failed", "Pipedrive refused it.", rf_user_id=7)
    store.record_referral(
        Referral(rf_user_id=8, campaign_id=1, first_name="Tess", email="tess@example.com", is_test=True)
    )
    store.log("info", "test referral", "Signed up.", rf_user_id=8, is_test=True)
    export_log_csv(store, tmp_path / "log.csv")
    rows = [dict(zip(HEADER, row, strict=True)) for row in read_csv(tmp_path / "log.csv")[1:]]
    assert [(r["name"], r["email"], r["state"]) for r in rows] == [
        ("王芳", "wang@example.com", "Needs attention"),
        ("Tess", "tess@example.com", "Test"),
    ]
    assert "7" not in (rows[0]["name"], rows[0]["email"])
