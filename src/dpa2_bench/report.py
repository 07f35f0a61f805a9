"""The suite's result as JSON and as Markdown tables (``docs/performance.md``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dpa2_core.io.files import atomic_write

__all__ = ["markdown", "write_json", "write_markdown", "write_text"]

TASK_NAMES = {"forward": "forward", "force": "forward+force"}


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` (UTF-8) at ``path``, whole or not at all."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, result: dict[str, Any]) -> None:
    write_text(path, json.dumps(result, indent=1) + "\n")


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1e3 * x:,.0f}" if x >= 0.1 else f"{1e3 * x:.1f}"


def _get(row: dict, key: str, fmt: str = "{:.2f}") -> str:
    v = row.get(key)
    return "n/a" if v is None else fmt.format(v)


def _machine(m: dict[str, Any]) -> list[str]:
    v = m.get("versions", {})
    lines = [f"- CPU: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; "
             f"torch threads {m.get('torch_threads')}; load average at start "
             f"{m.get('load_average_1min')}",
             f"- {m.get('platform')}, Python {m.get('python')}; " +
             ", ".join(f"{k} {x}" for k, x in v.items() if x)]
    if m.get("gpu"):
        lines.append(f"- GPU: {m['gpu']}")
    rates = m.get("matmul_gflops", {})
    if rates:
        lines.append("- measured matmul rate (torch, 1024²): " +
                     ", ".join(f"{k} {x:.1f} GFLOP/s" for k, x in rates.items()))
    return lines


def _main_table(rows: list[dict]) -> list[str]:
    out = ["| config | dtype | atoms | backend | task | dpa2 (ms) | deepmd-kit (ms) | "
           "ratio | max rel. diff | compile dpa2 / deepmd (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        comp = "" if "ours_compile_s" not in r else (
            f"{r['ours_compile_s']:.1f} / {_get(r, 'deepmd_compile_s', '{:.1f}')}")
        theirs = r.get("deepmd_name", "")
        out.append(f"| {r['config']} | {r['dtype']} | {r['natoms']:,} | {r['backend']} | "
                   f"{TASK_NAMES[r['task']]} | {_ms(r.get('ours_s'))} | "
                   f"{_ms(r.get('deepmd_s'))} {f'({theirs})' if theirs else ''} | "
                   f"{_get(r, 'ratio')} | {_get(r, 'max_rel_diff', '{:.1e}')} | {comp} |")
    return out


def _scaling(rows: list[dict]) -> list[str]:
    """Per-atom time at each size relative to the smallest size of the same case."""
    key = lambda r: (r["config"], r["dtype"], r["backend"], r["task"])  # noqa: E731
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = ["| config | dtype | backend | task | atoms | dpa2 per-atom vs smallest | "
           "deepmd-kit per-atom vs smallest |", "|---|---|---|---|---|---|---|"]
    for k, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["natoms"])
        base = rs[0]
        for r in rs[1:]:
            cells = []
            for who in ("ours", "deepmd"):
                if f"{who}_s" in r and f"{who}_s" in base:
                    per_atom = r[f"{who}_s"] / r["natoms"]
                    cells.append(f"{per_atom / (base[f'{who}_s'] / base['natoms']):.2f}")
                else:
                    cells.append("n/a")
            out.append(f"| {k[0]} | {k[1]} | {k[2]} | {TASK_NAMES[k[3]]} | "
                       f"{base['natoms']:,} -> {r['natoms']:,} | {cells[0]} | {cells[1]} |")
    return out if len(out) > 2 else []


def _flops(rows: list[dict]) -> list[str]:
    out = ["| config | dtype | atoms | backend | task | dpa2 GFLOP | dpa2 % of matmul rate | "
           "deepmd GFLOP | deepmd % of matmul rate |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ours_gflop" not in r and "deepmd_gflop" not in r:
            continue
        out.append(f"| {r['config']} | {r['dtype']} | {r['natoms']:,} | {r['backend']} | "
                   f"{TASK_NAMES[r['task']]} | {_get(r, 'ours_gflop', '{:.1f}')} | "
                   f"{_get(r, 'ours_roofline', '{:.0%}')} | {_get(r, 'deepmd_gflop', '{:.1f}')}"
                   f" | {_get(r, 'deepmd_roofline', '{:.0%}')} |")
    return out if len(out) > 2 else []


def _memory(rows: list[dict]) -> list[str]:
    out = ["| config | dtype | atoms | backend | task | dpa2 peak RSS (MB) | deepmd-kit peak "
           "RSS (MB) | dpa2 increase | deepmd increase |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ours_memory" not in r:
            continue
        cells = []
        for who in ("ours", "deepmd"):
            m = r.get(f"{who}_memory", {})
            cells.append(m.get("error") or f"{m.get('peak_rss_mb', float('nan')):,.0f}")
            cells.append("" if "error" in m else f"{m.get('increase_mb', float('nan')):,.0f}")
        out.append(f"| {r['config']} | {r['dtype']} | {r['natoms']:,} | {r['backend']} | "
                   f"{TASK_NAMES[r['task']]} | {cells[0]} | {cells[2]} | {cells[1]} | "
                   f"{cells[3]} |")
    return out if len(out) > 2 else []


def markdown(result: dict[str, Any], title: str = "Benchmark suite") -> str:
    rows = result["rows"]
    s = result["settings"]
    parts = [f"## {title}", "", *_machine(result["machine"]), "",
             f"Clock: {s.get('clock', 'wall')} time"
             + (f", {s['threads']} thread(s)" if s.get("threads") else "") + ". "
             f"Median of {s['repeat']} alternating calls (fewer for calls above 5 s) per "
             f"contender, same inputs and parameters; ratio = dpa2 / deepmd-kit (below 1: "
             f"dpa2 faster). {s['scalar']}. Max rel. diff: of the descriptors.", "",
             *_main_table(rows)]
    for heading, table in (("Scaling (1.0 = linear in the number of atoms)", _scaling(rows)),
                           ("FLOPs and fraction of the measured matmul rate", _flops(rows)),
                           ("Peak memory (fresh process per contender; increase over setup)",
                            _memory(rows))):
        if table:
            parts += ["", f"### {heading}", "", *table]
    return "\n".join(parts) + "\n"


def write_markdown(path: str | os.PathLike, result: dict[str, Any], title: str | None = None
                   ) -> None:
    write_text(path, markdown(result, title or "Benchmark suite"))
