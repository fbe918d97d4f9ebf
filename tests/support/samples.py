"""The samples (tests/samples, README there): where they are and how a result is judged against an
expect.json, exactly as ../shared/tools/check_corpus.py judges it."""

from __future__ import annotations

from support.configs import SAMPLES

CASES = sorted(p for p in (SAMPLES / "cases").iterdir() if p.is_dir())
SEQUENCES = sorted(p for p in (SAMPLES / "sequences").iterdir() if p.is_dir())


def differences(expect: dict, got: dict) -> list[str]:
    diffs = []
    if "outcome" in expect and got["outcome"] != expect["outcome"]:
        diffs.append(f"outcome {got['outcome']} != {expect['outcome']}: {got['errors']}")
    if expect.get("month") and got["month"] != expect["month"]:
        diffs.append(f"month {got['month']} != {expect['month']}")
    if "reply" in expect and bool(got["reply"]) != bool(expect["reply"]):
        diffs.append(f"reply {got['reply']!r}, expected {'one' if expect['reply'] else 'none'}")
    if "rows" in expect:
        if len(got["rows"]) != len(expect["rows"]):
            diffs.append(f"{len(got['rows'])} rows != {len(expect['rows'])}: {got['rows']}")
        for i, (erow, grow) in enumerate(zip(expect["rows"], got["rows"])):
            for key, value in erow.items():
                if key == "school" and erow.get("ok") is False:
                    continue
                if grow.get(key) != value:
                    diffs.append(f"row {i + 1} {key}: {grow.get(key)!r} != {value!r} ({grow['errors']})")
    return diffs
