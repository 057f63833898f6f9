"""Drives the real application in its own process for the restart test: ``run`` opens the demo
CT, runs the shipped chest models and a risk model and quits; ``check`` is a new process on the
same data folder that reopens the series, reports what came back and exports it. Prints one
JSON line."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_CT = REPO / "resources" / "demo" / "lung2"
CHD = "framingham-chd-10y"


def main(phase: str, work: str) -> int:
    sys.path.insert(0, str(REPO))
    from PySide6.QtWidgets import QApplication

    from medview.app import create_window
    from medview.io.scan import scan

    window = create_window([str(DEMO_CT)] if phase == "run" else [])
    window.show()
    app = QApplication.instance()
    assert app is not None

    def settle(until: object, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            app.processEvents()
            if until():  # type: ignore[operator]
                return
            time.sleep(0.01)
        raise SystemExit(f"timed out in phase {phase}")

    if phase == "check":
        window.open_stack(scan([str(DEMO_CT)]).series[0].series_uid)
    settle(lambda: window.controller.state is not None and not window.runner.running)
    out: dict[str, object] = {}
    if phase == "run":
        for model in ("chest-ct-segmentation", "chest-ct-lesion-classifier"):
            window.models_panel.select(model)
            window.run_model(window.models_panel.selected(), "cpu")
            settle(lambda: not window.inference.running)
        settle(lambda: window.risk_panel.study_uid is not None)
        window.risk_panel.select(CHD)
        csv = Path(work) / "row.csv"
        csv.write_text("age,sysBP,totChol,diabetes,smoking\n66,170,280,1,yes\n")
        window.risk_panel.import_csv(str(csv))
        out["risk"] = window.risk_panel.result.probability
        settle(lambda: not window.runner.running)
    else:
        settle(lambda: window.risk_panel.study_uid is not None)
        window.risk_panel.select(CHD)
        result = window.risk_panel.result
        out["risk"] = None if result is None else result.probability
        window.export_report(out_dir=str(Path(work) / "export"))
        settle(lambda: window.session.last_export is not None)
        export = window.session.last_export
        out["export"] = [str(export.path / f) for f in export.files]
    state = window.controller.state
    seg = window.session.segmentation
    cls = window.session.classification
    out["labels_sha256"] = hashlib.sha256(seg.labels.array.tobytes()).hexdigest() if seg else None
    out["overlay_on_grid"] = bool(
        state.overlay is not None and state.overlay.labels.geometry is state.volume.geometry
    )
    out["finding_probability"] = cls.finding_probability if cls else None
    out["heatmap"] = state.heatmap is not None
    window.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
