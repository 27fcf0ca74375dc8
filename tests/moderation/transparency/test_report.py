"""`manage.py transparency_report`: the Art. 15/24 figures of the hand-built history, exactly."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from moderation.transparency import report
from tests.moderation.transparency.conftest import NOW, History

HOUR = 3600


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("transparency_report", *args, stdout=out)
    return out.getvalue()


def test_json_report_of_the_three_days(history: History) -> None:
    document = json.loads(run("--from", "2026-03-02", "--to", "2026-03-04"))
    assert document["period"] == {"from": "2026-03-02", "to": "2026-03-04", "time_zone": "UTC"}
    assert document["generated_at"] == NOW.isoformat()
    assert document["notices"] == {
        "total": 8,
        "by_category": {"spam": 3, "terrorism": 3, "illegal_goods": 1, "uncategorised": 1},
        "by_source": {"other": 7, "trusted_flagger": 1},
        "by_category_and_source": {
            "illegal_goods": {"trusted_flagger": 1},
            "spam": {"other": 3},
            "terrorism": {"other": 3},
            "uncategorised": {"other": 1},
        },
    }
    assert document["actions"] == {
        "total": 7,
        "by_type": {"block": 5, "unblock": 1, "decline": 1},
        "blocks_by_category": {"terrorism": 3, "illegal_goods": 1, "spam": 1},
        "blocks_by_entity_kind": {"channel_or_group": 3, "bot": 1, "sticker_set": 1},
        "declines_by_reason": {"not_enough_information": 1},
    }
    assert document["time_to_act"] == {
        "cases": 5,
        "median_seconds": 24.0 * HOUR,
        "p90_seconds": 45 * HOUR,
        "by_category": {
            "illegal_goods": {"cases": 1, "median_seconds": 24.0 * HOUR, "p90_seconds": 24 * HOUR},
            "spam": {"cases": 2, "median_seconds": 26.5 * HOUR, "p90_seconds": 30 * HOUR},
            "terrorism": {"cases": 2, "median_seconds": 25.5 * HOUR, "p90_seconds": 45 * HOUR},
        },
        "by_decision": {
            "block": {"cases": 4, "median_seconds": 27.0 * HOUR, "p90_seconds": 45 * HOUR},
            "decline": {"cases": 1, "median_seconds": 23.0 * HOUR, "p90_seconds": 23 * HOUR},
        },
    }
    # No appeals are recorded: the report says so (null) rather than claim there were none.
    assert document["complaints"] is None


def test_a_period_counts_only_its_own_days(history: History) -> None:
    document = json.loads(run("--from", "2026-03-04", "--to", "2026-03-04"))
    assert document["notices"]["total"] == 0
    assert document["actions"]["by_type"] == {"block": 2, "unblock": 1, "decline": 0}
    # C3's first decision was on day 3, 45 hours after the flagger's notice of day 1.
    assert (document["time_to_act"]["cases"], document["time_to_act"]["median_seconds"]) == (1, 45.0 * HOUR)


def test_a_period_without_decisions_has_no_time_to_act(history: History) -> None:
    document = json.loads(run("--from", "2026-02-01", "--to", "2026-02-28"))
    assert document["time_to_act"] == {
        "cases": 0,
        "median_seconds": None,
        "p90_seconds": None,
        "by_category": {},
        "by_decision": {},
    }


def test_csv_report_has_one_row_per_figure(history: History) -> None:
    rows = list(csv.DictReader(io.StringIO(run("--from", "2026-03-02", "--to", "2026-03-04", "--format", "csv"))))
    assert list(rows[0]) == report.CSV_COLUMNS
    assert {row["period_from"] for row in rows} == {"2026-03-02"}
    table = {(row["figure"], row["breakdown"], row["key"]): row for row in rows}
    assert table[("notices", "all", "")]["count"] == "8"
    assert table[("notices", "source", "trusted_flagger")]["count"] == "1"
    assert table[("notices", "category+source", "illegal_goods+trusted_flagger")]["count"] == "1"
    assert table[("actions", "type", "unblock")]["count"] == "1"
    assert table[("blocks", "entity_kind", "sticker_set")]["count"] == "1"
    assert table[("declines", "reason", "not_enough_information")]["count"] == "1"
    overall = table[("time_to_act", "all", "")]
    assert (overall["count"], overall["median_seconds"], overall["p90_seconds"]) == ("5", "86400.0", "162000")
    assert table[("time_to_act", "decision", "block")]["median_seconds"] == "97200.0"
    assert len(rows) == len(table)


def test_report_to_a_file(history: History, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    out = io.StringIO()
    err = io.StringIO()
    call_command(
        "transparency_report",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-04",
        "--format",
        "csv",
        "-o",
        str(target),
        stdout=out,
        stderr=err,
    )
    assert out.getvalue() == ""
    assert err.getvalue().strip() == f"wrote {target}"
    assert target.read_text(encoding="utf-8").splitlines()[0] == ",".join(report.CSV_COLUMNS)


def test_report_names_nobody(history: History) -> None:
    text = run("--from", "2026-03-02", "--to", "2026-03-04") + run(
        "--from", "2026-03-02", "--to", "2026-03-04", "--format", "csv"
    )
    for personal in ("amira", "flagger@", "ngo.example", "mod1", "lena", "t.me", "Execution videos"):
        assert personal not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-04", "--to", "2026-03-02"], "--from must not be after --to"),
        (["--from", "March 2", "--to", "2026-03-02"], "not a date (YYYY-MM-DD): 'March 2'"),
    ],
)
def test_report_refuses_a_bad_period(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("transparency_report", *args)
