"""Rows of risk-model inputs from a CSV file (header = feature names), for the command line
and the panel's CSV import."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from medview.core.errors import RiskInputError

MAX_ROWS = 1_000_000


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts (header = feature names)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(f, dialect=dialect)
            rows = []
            for row in reader:
                if None in row:
                    raise RiskInputError(
                        f"row {reader.line_num - 1} has more values than the header has names",
                        path=path,
                    )
                rows.append({k.strip(): (v or "") for k, v in row.items() if k is not None})
                if len(rows) > MAX_ROWS:
                    raise RiskInputError(f"more than {MAX_ROWS} rows", path=path)
    except OSError as e:
        raise RiskInputError(f"cannot read: {e.strerror or e}", path=path) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise RiskInputError(f"not a readable CSV file ({e})", path=path) from None
    if not rows:
        raise RiskInputError("no data rows under the header", path=path)
    return rows
