"""``medview pacs echo|find|get|send``: the PACS actions without the window.

Exit codes: 0 success; 1 the PACS refused, failed or could not be reached; 2 usage error.
Patient names and IDs appear only in the command's own output (never in the log).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from medview.cli.progress import printer
from medview.core.errors import MedviewError, PacsError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("pacs", help="talk to a PACS: echo, find, get, send")
    psub = p.add_subparsers(dest="pacs_command", required=True)

    def node_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--node", help="a node configured in the window (File > PACS…)")
        q.add_argument("--host", default="127.0.0.1")
        q.add_argument("--port", type=int, default=104)
        q.add_argument("--aet", help="the PACS's AE title (called AE)")
        q.add_argument("--our-aet", default=None, help="our AE title (default MEDVIEW)")
        q.add_argument("--dicomweb", metavar="URL", help="use DICOMweb at this URL")
        q.add_argument("--json", action="store_true", help="print JSON")

    q = psub.add_parser("echo", help="C-ECHO: test the connection")
    node_args(q)
    q = psub.add_parser("find", help="C-FIND (or QIDO-RS) for studies or series")
    node_args(q)
    q.add_argument("--level", choices=("study", "series"), default="study")
    q.add_argument("--patient-name", default="", help="wildcards * and ? allowed")
    q.add_argument("--patient-id", default="")
    q.add_argument("--date", default="", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    q.add_argument("--modality", default="")
    q.add_argument("--accession", default="")
    q.add_argument("--description", default="")
    q.add_argument("--study-uid", default="")
    q.add_argument("--series-uid", default="")
    q = psub.add_parser("get", help="retrieve a study or series into the study database")
    node_args(q)
    q.add_argument("--study-uid", required=True)
    q.add_argument("--series-uid", default=None)
    q.add_argument(
        "--method",
        choices=("get", "move", "wado"),
        default=None,
        help="C-GET (default), C-MOVE to a listener on --listen-port, or WADO-RS",
    )
    q.add_argument("--listen-port", type=int, default=11112)
    q.add_argument("--out", metavar="DIR", help="write here instead of the MedView store")
    q = psub.add_parser("send", help="C-STORE (or STOW-RS) files and folders")
    node_args(q)
    q.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_pacs)


def _node(args: argparse.Namespace) -> Any:
    from medview.pacs.nodes import DEFAULT_OUR_AET, PacsNode, load_nodes

    if args.node:
        nodes = {n.name: n for n in load_nodes()}
        if args.node not in nodes:
            raise PacsError(f"no PACS node named {args.node!r} (configure it in File > PACS…)")
        node = nodes[args.node]
        if args.our_aet:
            node = replace(node, our_ae_title=args.our_aet)
        return node.checked()
    if not args.aet and not args.dicomweb:
        raise PacsError("give --aet (DIMSE), --dicomweb URL, or --node NAME")
    return PacsNode(
        name=args.aet or args.dicomweb,
        ae_title=args.aet or "",
        host=args.host,
        port=args.port,
        our_ae_title=args.our_aet or DEFAULT_OUR_AET,
        dicomweb_url=args.dicomweb or "",
    ).checked()


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else text + "\n")


def cmd_pacs(args: argparse.Namespace) -> int:
    from medview.pacs import dimse, service
    from medview.pacs.query import QueryKeys
    from medview.pacs.store import ReceivedStore

    try:
        node = _node(args)
        web = bool(args.dicomweb) and not args.aet
        if args.pacs_command == "echo":
            if web:
                service.search(node, QueryKeys(study_uid="1.2"), "study", web=True)
                _out(args, {"node": node.name, "ok": True, "protocol": "QIDO-RS"}, "ok")
                return 0
            e = dimse.echo(node)
            _out(
                args,
                {"node": e.node, "ok": e.ok, "status": e.status, "seconds": round(e.seconds, 3)},
                f"{'ok' if e.ok else 'failed'}: status 0x{e.status:04X} in {e.seconds:.2f} s",
            )
            return 0 if e.ok else 1
        if args.pacs_command == "find":
            keys = QueryKeys(
                patient_name=args.patient_name,
                patient_id=args.patient_id,
                study_date=args.date,
                modality=args.modality,
                accession=args.accession,
                description=args.description,
                study_uid=args.study_uid,
                series_uid=args.series_uid,
            )
            matches = service.search(node, keys, args.level, web=web)
            rows = [m.to_dict() for m in matches]
            text = "\n".join(
                "  ".join(str(v) for v in row.values() if v not in (None, "")) for row in rows
            )
            _out(args, {"level": args.level, "matches": rows}, text or "no matches")
            return 0
        if args.pacs_command == "get":
            method = args.method or ("wado" if web else "get")
            store = ReceivedStore(args.out) if args.out else ReceivedStore()
            progress = printer(not args.json)
            r = service.retrieve(
                node,
                args.study_uid,
                args.series_uid,
                method=method,
                store=store,
                listen_port=args.listen_port,
                index=not args.out,
                progress=progress,
            )
            data = {
                "method": r.method,
                "files": [str(p) for p in r.files],
                "completed": r.completed,
                "failed": r.failed,
                "warning": r.warning,
                "seconds": round(r.seconds, 3),
                "indexed": not args.out,
            }
            _out(args, data, f"{len(r.files)} instance(s) by {r.method} in {r.seconds:.1f} s")
            return 0 if r.files and not r.failed else 1
        if args.pacs_command == "send":
            s = service.send(node, args.paths, web=web)
            data = {
                "sent": s.sent,
                "failed": [{"file": f, "why": why} for f, why in s.failed],
                "sop_instance_uids": s.sop_instance_uids,
                "seconds": round(s.seconds, 3),
            }
            _out(args, data, f"sent {s.sent}, failed {len(s.failed)} in {s.seconds:.1f} s")
            return 0 if not s.failed else 1
    except MedviewError as e:
        sys.stderr.write(f"medview pacs: {e}\n")
        return 1
    return 2
