"""``medview risk --list`` and ``medview risk MODEL --input rows.csv [--json]``.

Every CSV row (header = feature names; empty or ``NA`` = missing) gets the same numbers the
panel shows. A row with an error gets the error and no probability; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from medview.core.errors import RiskInputError, RiskModelError
from medview.risk.model import RiskModel
from medview.risk.predict import RESEARCH_USE, RiskResult, predict
from medview.risk.registry import find_risk_model, list_risk_models
from medview.risk.rows import read_rows


def _row_text(model: RiskModel, result: RiskResult) -> str:
    top = sorted(result.contributions, key=lambda c: -abs(c.log_odds))[:3]
    drivers = ", ".join(f"{c.label} {c.log_odds:+.2f}" for c in top)
    line = (
        f"{100 * result.probability:5.1f} %  (95 % interval {100 * result.low:.1f}–"
        f"{100 * result.high:.1f} %)  {result.band:12s}  largest contributions (log-odds): "
        f"{drivers}"
    )
    if result.missing:
        line += f"\n      missing: {', '.join(result.missing)}"
    for w in result.warnings:
        line += f"\n      warning: {w.message}"
    return line


def cmd_risk(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.list:
        entries = list_risk_models()
        if args.json:
            json.dump(
                [
                    {
                        "id": e.model.id if e.model else None,
                        "name": e.model.name if e.model else None,
                        "version": e.model.version if e.model else None,
                        "outcome": e.model.outcome if e.model else None,
                        "features": [f.name for f in e.model.features] if e.model else [],
                        "folder": str(e.folder),
                        "error": e.error,
                    }
                    for e in entries
                ],
                out,
                indent=1,
            )
            out.write("\n")
        else:
            for e in entries:
                if e.model:
                    out.write(
                        f"{e.model.id}  {e.model.version}  {e.model.name}: {e.model.outcome} "
                        f"({len(e.model.features)} features)\n"
                    )
                else:
                    out.write(f"REFUSED {e.folder}: {e.error}\n")
        return 0
    if not args.model or not args.input:
        sys.stderr.write("medview risk: give --list, or MODEL and --input rows.csv\n")
        return 2
    try:
        model = find_risk_model(args.model)
        rows = read_rows(args.input)
    except (RiskModelError, RiskInputError) as e:
        sys.stderr.write(f"medview risk: {e}\n")
        return 1
    failed = 0
    records: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=1):
        try:
            result = predict(model, row)
        except RiskInputError as e:
            failed += 1
            records.append({"row": i, "error": e.message})
            if not args.json:
                out.write(f"row {i}: no prediction: {e.message}\n")
            continue
        records.append({"row": i, **result.to_dict()})
        if not args.json:
            out.write(f"row {i}: {_row_text(model, result)}\n")
    if args.json:
        json.dump({"model": model.id, "rows": records, "research_use": RESEARCH_USE}, out, indent=1)
        out.write("\n")
    else:
        out.write(f"{model.name} {model.version}: {model.outcome}. {RESEARCH_USE}\n")
    return 1 if failed else 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("risk", help="tabular risk models: list them or predict rows of a CSV")
    p.add_argument("model", nargs="?", help="model id (see --list) or a package folder")
    p.add_argument("--list", action="store_true", help="installed risk models")
    p.add_argument("--input", metavar="ROWS.csv", help="CSV, header = feature names")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_risk)
