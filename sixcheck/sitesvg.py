"""The site as a picture: vantages, how they are tied, what each probed, and where the causes sit.

For people who would rather look than read, and for paper: plain inline SVG (no script, no web
font), outcomes told by colour AND line style (a failed edge is red and dashed, so a grey printout
still shows it), causes as numbered markers matching the Diagnosis list.
"""

from __future__ import annotations

import html
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sitediag import FAILED, OUTSIDE, ROUTER, Relation, SiteCause, Vantage

#: request fields that name where a probe went
TARGET_KEYS = ("dst", "destination", "server", "target", "targets", "resolver")
COLOURS = {
    "failed": "#c62828",
    "passed": "#2e7d32",
    "skipped": "#757575",
    "none": "#9e9e9e",
    "tube": "#bbdefb",
}
BOX_W, CHIP_W, CHIP_H, LINE = 210, 320, 32, 15
COL_X = {OUTSIDE: 48, ROUTER: 178, "host": 308}
CHIP_X = 620
WIDTH = CHIP_X + CHIP_W + 16


@dataclass
class Edge:
    """Probes of one vantage to one target (another vantage or an address/name)."""

    outcome: str = "none"
    areas: set[str] = field(default_factory=set)
    checks: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)  # tunnel/VPN interfaces the probes used
    router_on: set[str] = field(default_factory=set)  # asked as a router on these interfaces

    def add(self, check: Mapping[str, Any], via: str | None) -> None:
        out = str(check.get("outcome"))
        self.checks.append(str(check["id"]))
        if check.get("area"):
            self.areas.add(str(check["area"]))
        if via:
            self.via.add(via)
        if out in FAILED:
            self.failed.append(str(check["id"]))
            self.outcome = "failed"
        elif out == "passed" and self.outcome != "failed":
            self.outcome = "passed"
        elif out == "skipped" and self.outcome == "none":
            self.outcome = "skipped"


def _targets(check: Mapping[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    """(target, tunnel/VPN interface the probe used, interface it was asked on as a router)
    for every probe of a check."""
    for entry in check.get("evidence") or ():
        req = entry.get("request") if isinstance(entry, Mapping) else None
        if not isinstance(req, Mapping):
            continue
        obs = entry.get("observation") or {}
        iface = obs.get("interface") if isinstance(obs, Mapping) else None
        via = str(iface) if check.get("area") in ("tunnel", "vpn") and iface else None
        for key in TARGET_KEYS:
            val = req.get(key)
            router = str(req.get("interface")) if key == "targets" else None
            for v in val if isinstance(val, list) else [val]:
                if isinstance(v, str) and v:
                    yield v, via, router


def _norm(target: str) -> str:
    try:
        return str(ipaddress.ip_address(target))
    except ValueError:
        return target


def edges_of(v: Vantage, owner: Mapping[str, str]) -> tuple[dict[str, Edge], dict[str, Edge]]:
    """This vantage's probes: to other vantages (by name) and to other targets (by address)."""
    to_vantage: dict[str, Edge] = {}
    to_target: dict[str, Edge] = {}
    own = {str(a) for a in v.addresses()}
    for check in v.checks:
        seen: set[str] = set()
        for raw, via, router in _targets(check):
            t = _norm(raw)
            if t in own or t in seen:
                continue
            seen.add(t)
            if t in owner and owner[t] != v.name:
                to_vantage.setdefault(owner[t], Edge()).add(check, via)
            else:
                e = to_target.setdefault(t, Edge())
                e.add(check, via)
                if router:
                    e.router_on.add(router)
    return to_vantage, to_target


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _text(x: float, y: float, s: str, size: int = 12, weight: str = "normal", **kw: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{_esc(v)}"' for k, v in kw.items())
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}"{extra}>'
        f"{_esc(s)}</text>"
    )


def _marker(x: float, y: float, n: int) -> str:
    return (
        f'<g class="sx-cause-mark"><circle cx="{x:.0f}" cy="{y:.0f}" r="10" fill="#b71c1c" '
        f'stroke="#fff" stroke-width="1.5"/>{_text(x, y + 4, str(n), 11, "bold", fill="#fff", text_anchor="middle")}</g>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, outcome: str, width: float = 2.5) -> str:
    dash = ' stroke-dasharray="7 4"' if outcome == "failed" else ""
    dash = ' stroke-dasharray="2 4"' if outcome in ("skipped", "none") else dash
    return (
        f'<path d="M{x1:.0f},{y1:.0f} C{(x1 + x2) / 2:.0f},{y1:.0f} {(x1 + x2) / 2:.0f},{y2:.0f} '
        f'{x2:.0f},{y2:.0f}" fill="none" stroke="{COLOURS[outcome]}" stroke-width="{width}"{dash}/>'
    )


def _short(addr: str, limit: int = 30) -> str:
    return addr if len(addr) <= limit else addr[: limit - 1] + "…"


def render(
    vantages: Sequence[Vantage], causes: Sequence[SiteCause], rels: Sequence[Relation]
) -> str:
    """The picture as one ``<svg>`` element."""
    owner = {str(a): v.name for v in vantages for a in v.addresses()}
    # rows: outside vantages, each gateway with the vantages on its links, then the rest
    order: list[Vantage] = [v for v in vantages if v.role == OUTSIDE]
    for g in (v for v in vantages if v.role == ROUTER):
        order.append(g)
        lan = {r.vantage for r in rels if r.gateway == g.name and r.kind == "lan"}
        order += [v for v in vantages if v.name in lan and v not in order]
    order += [v for v in vantages if v not in order]
    marks: dict[str, list[int]] = {}
    mark_of_check: dict[tuple[str, str], int] = {}
    for n, c in enumerate(causes, 1):
        marks.setdefault(c.vantage, []).append(n)
        for r in c.failures:
            mark_of_check.setdefault((r.vantage, r.check), n)

    parts: list[str] = []
    pos: dict[str, tuple[float, float, float]] = {}  # name -> x, y, height of its box
    y = 40.0
    parts.append(_text(16, 22, "vantages (by role)", 12, "bold", fill="#333"))
    parts.append(_text(CHIP_X, 22, "what each probed", 12,
                       "bold", fill="#333"))  # fmt: skip
    edges: dict[str, tuple[dict[str, Edge], dict[str, Edge]]] = {}
    for v in order:
        to_v, to_t = edges_of(v, owner) if v.doc is not None else ({}, {})
        edges[v.name] = (to_v, to_t)
        lines = _box_lines(v)
        h = 14 + LINE * len(lines)
        chips = sorted(to_t.items(), key=lambda kv: (kv[1].outcome != "failed", kv[0]))
        band = max(h, len(chips) * (CHIP_H + 6)) + 26
        x = COL_X.get(v.role, COL_X["host"]) if v.doc is not None else COL_X["host"]
        bad = v.doc is None or bool(v.failed())
        stroke = COLOURS["failed"] if bad else COLOURS["passed"]
        dash = ' stroke-dasharray="6 3"' if v.doc is None else ""
        parts.append(
            f'<g class="sx-vantage" data-vantage="{_esc(v.name)}"><rect x="{x}" y="{y:.0f}" '
            f'width="{BOX_W}" height="{h}" rx="6" fill="{"#fdecea" if bad else "#f1f8e9"}" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>'
        )
        for i, (s, weight) in enumerate(lines):
            parts.append(_text(x + 8, y + 18 + i * LINE, s, 12 if i else 13, weight))
        parts.append("</g>")
        for k, n in enumerate(marks.get(v.name, [])[:4]):
            parts.append(_marker(x + BOX_W - 10 - k * 22, y, n))
        pos[v.name] = (x, y, h)
        parts += _chips((x + BOX_W, y + h / 2), y, chips, v.name, mark_of_check)
        y += band
    # vantage-to-vantage edges last, so they are drawn over the bands
    for v in order:
        for other, e in edges[v.name][0].items():
            if other not in pos or v.name not in pos:
                continue
            parts.append(_vantage_edge(pos[v.name], pos[other], e, v.name, other, causes))
    for rel in rels:  # a LAN link with no probe across it still shows where the vantage sits
        probed = rel.gateway in edges.get(rel.vantage, ({}, {}))[0]
        if rel.kind == "lan" and not probed and rel.vantage in pos and rel.gateway in pos:
            a, b = pos[rel.vantage], pos[rel.gateway]
            parts.append(_vantage_edge(a, b, Edge(), rel.vantage, rel.gateway, causes))
    height = y + 84
    parts.append(_legend(height - 60))
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sx-site-picture" role="img" '
        f'viewBox="0 0 {WIDTH:.0f} {height:.0f}" width="{WIDTH:.0f}" '
        f'style="max-width:100%;height:auto" font-family="DejaVu Sans, Arial, sans-serif">'
        f"<title>the site's vantages, what they probed, and the causes</title>{body}</svg>"
    )


def _chips(
    start: tuple[float, float],
    top: float,
    chips: Sequence[tuple[str, Edge]],
    vantage: str,
    mark_of_check: Mapping[tuple[str, str], int],
) -> list[str]:
    """A vantage's targets, one under the other, each linked to the vantage's box."""
    parts: list[str] = []
    for i, (target, e) in enumerate(chips):
        cx, cy = CHIP_X, top + i * (CHIP_H + 6)
        if e.via:  # through a tunnel or VPN: a light tube under the outcome's line
            parts.append(_line(*start, cx, cy + CHIP_H / 2, "tube", 8))
        parts.append(_line(*start, cx, cy + CHIP_H / 2, e.outcome, 1.8))
        parts.append(_chip(cx, cy, target, e))
        marks = [mark_of_check[(vantage, f)] for f in e.failed if (vantage, f) in mark_of_check]
        if marks:
            parts.append(_marker(cx + CHIP_W - 4, cy + 2, min(marks)))
    return parts


def _box_lines(v: Vantage) -> list[tuple[str, str]]:
    if v.doc is None:
        return [(v.name, "bold"), ("NO RESULTS", "bold"), (_short(v.error or "", 34), "normal")]
    s = dict(v.doc.get("summary") or {})
    host = str((v.doc.get("vantage") or {}).get("hostname") or "?")
    failed = int(s.get("failed", 0)) + int(s.get("error", 0))
    lines = [
        (v.name, "bold"),
        (f"{v.role} on {_short(host, 18)}", "normal"),
        (f"{s.get('passed', 0)} passed, {failed} failed", "bold" if failed else "normal"),
    ]
    for ifname, ifs in list(v.interfaces().items())[:4]:
        glob = [str(i.ip) for i in ifs if not i.ip.is_link_local] or [str(ifs[0].ip)]
        lines.append((_short(f"{ifname} {glob[0]}", 32), "normal"))
    return lines


def _chip(x: float, y: float, target: str, e: Edge) -> str:
    colour = COLOURS[e.outcome]
    what = ", ".join(sorted(e.areas)) or "?"
    if e.via:
        what += " via " + ", ".join(sorted(e.via))
    if e.router_on:
        what = f"router on {', '.join(sorted(e.router_on))}; {what}"
    n_bad = len(e.failed)
    tally = f"{n_bad} of {len(e.checks)} failed" if n_bad else f"{len(e.checks)} passed"
    return (
        f'<g class="sx-target sx-{e.outcome}"><rect x="{x:.0f}" y="{y:.0f}" width="{CHIP_W}" '
        f'height="{CHIP_H}" rx="4" fill="#fff" stroke="{colour}" stroke-width="1.5"/>'
        f"{_text(x + 6, y + 14, _short(target, 46), 11, 'bold')}"
        f"{_text(x + 6, y + 28, _short(f'{what}: {tally}', 52), 10, fill='#444')}</g>"
    )


def _vantage_edge(
    a: tuple[float, float, float],
    b: tuple[float, float, float],
    e: Edge,
    a_name: str,
    b_name: str,
    causes: Sequence[SiteCause],
) -> str:
    ax, ay, ah = a
    bx, by, bh = b
    # leave from the left edges and bow out to the left, so the line never crosses a box
    x1, y1, x2, y2 = ax, ay + ah / 2, bx, by + bh / 2
    bow = max(10.0, min(x1, x2) - 16 - abs(y2 - y1) / 10)
    dash = ' stroke-dasharray="7 4"' if e.outcome == "failed" else ""
    dash = ' stroke-dasharray="2 4"' if e.outcome == "none" else dash
    out = [
        f'<path class="sx-link" d="M{x1:.0f},{y1:.0f} C{bow:.0f},{y1:.0f} {bow:.0f},{y2:.0f} '
        f'{x2:.0f},{y2:.0f}" fill="none" stroke="{COLOURS[e.outcome]}" stroke-width="2.5"{dash} '
        f'marker-end="url(#sx-arrow)"/>'
    ]
    for n, c in enumerate(causes, 1):
        vs = c.vantages()
        if len(vs) > 1 and c.vantage in (a_name, b_name) and {a_name, b_name} <= set(vs):
            out.append(_marker(0.125 * (x1 + x2) + 0.75 * bow, (y1 + y2) / 2, n))
            break
    return "".join(out)


def _legend(y: float) -> str:
    items = [
        ("passed", "passed"),
        ("failed", "failed (dashed)"),
        ("none", "tied by addresses, not probed"),
        ("tube", "through a tunnel or VPN"),
    ]
    out = [
        '<defs><marker id="sx-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>'
    ]
    x = 16.0
    for outcome, label in items:
        out.append(_line(x, y, x + 40, y, outcome, 8 if outcome == "tube" else 2.5))
        out.append(_text(x + 48, y + 4, label, 11))
        x += 64 + 6.5 * len(label)
    out.append(_marker(26, y + 24, 1))
    out.append(
        _text(
            42,
            y + 28,
            "a cause, numbered as in the Diagnosis: on the vantage where it "
            "sits, on the links it crosses and on the failures it explains",
            11,
        )
    )
    return "".join(out)
