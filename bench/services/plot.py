#!/usr/bin/env python3
"""Plots a bench/service-scale.sh TSV: new TCP connections/s against the number of services
(log x), one line each for palisade, iptables, nftables and direct; with matplotlib also a
second panel with the time to change one service (log y).

  python3 bench/services/plot.py [TSV] [PNG]
      TSV: default the newest bench/services/results/service-scale-*.tsv
      PNG: default docs/images/service-scale.png

matplotlib comes from Debian's python3-matplotlib: when this interpreter cannot import it,
the script re-runs itself with /usr/bin/python3, installing the package first when it is
missing and apt-get works (root). Without it, a minimal PNG writer (zlib + struct) draws the
connections/s panel: axes, ticks, lines and a legend.
"""
import csv
import glob
import os
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERIES = [  # column, label, colour
    ("palisade_conn_per_s", "palisade (socket-LB)", (0x1f, 0x77, 0xb4)),
    ("iptables_conn_per_s", "kube-proxy iptables", (0xd6, 0x27, 0x28)),
    ("nftables_conn_per_s", "kube-proxy nftables", (0xff, 0x7f, 0x0e)),
    ("direct_conn_per_s", "direct to a backend", (0x7f, 0x7f, 0x7f)),
]
UPDATES = [
    ("palisade_update_ms", "palisade Upsert", (0x1f, 0x77, 0xb4)),
    ("iptables_update_ms", "iptables full restore", (0xd6, 0x27, 0x28)),
    ("nftables_update_ms", "nftables transaction", (0xff, 0x7f, 0x0e)),
]


def read(tsv):
    with open(tsv) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit(f"{tsv}: no rows")

    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    return [{k: num(v) for k, v in r.items()} for r in rows]


def matplotlib_or_reexec():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        pass
    system = "/usr/bin/python3"
    if os.environ.get("PLOT_NO_REEXEC") or not os.path.exists(system):
        return None
    have = subprocess.run([system, "-c", "import matplotlib"], capture_output=True).returncode == 0
    if not have and os.geteuid() == 0 and subprocess.run(["dpkg", "-s", "python3-matplotlib"], capture_output=True).returncode != 0:
        print("plot.py: installing python3-matplotlib (apt-get)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "python3-matplotlib"], stdout=subprocess.DEVNULL)
        have = subprocess.run([system, "-c", "import matplotlib"], capture_output=True).returncode == 0
    if have and os.path.realpath(sys.executable) != os.path.realpath(system):
        os.environ["PLOT_NO_REEXEC"] = "1"
        os.execv(system, [system] + sys.argv)
    return None


def plot_matplotlib(plt, rows, out, title):
    xs = [r["services"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    for col, label, rgb in SERIES:
        pts = [(r["services"], r[col]) for r in rows if r.get(col) is not None]
        if pts:
            a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label, color="#%02x%02x%02x" % rgb,
                   linestyle="--" if col.startswith("direct") else "-")
    a.set_xscale("log")
    a.set_xticks(xs, [f"{int(x):,}" for x in xs])
    a.set_ylim(bottom=0)
    a.set_xlabel("ClusterIP services (the client's is the last)")
    a.set_ylabel("new TCP connections/s (one client)")
    a.grid(True, alpha=0.3)
    a.legend()
    for col, label, rgb in UPDATES:
        pts = [(r["services"], r[col]) for r in rows if r.get(col) is not None and r[col] > 0]
        if pts:
            b.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label, color="#%02x%02x%02x" % rgb)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xticks(xs, [f"{int(x):,}" for x in xs])
    b.set_xlabel("ClusterIP services")
    b.set_ylabel("ms to change one service's endpoints")
    b.grid(True, which="both", alpha=0.3)
    b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


# ---------------------------------------------------------------- the fallback: a PNG by hand
FONT = {  # 3x5, rows top to bottom, bits left to right
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ",": "000000000010100", ".": "000000000000010",
    "/": "001001010100100", "-": "000000111000000", "(": "010100100100010", ")": "010001001001010",
    " ": "000000000000000", "a": "000011101101011", "b": "100110101101110", "c": "000011100100011",
    "d": "001011101101011", "e": "000111111100011", "f": "011100110100100", "g": "011101011001110",
    "h": "100110101101101", "i": "010000010010010", "k": "100101110101101", "l": "110010010010111",
    "m": "000111111101101", "n": "000110101101101", "o": "000010101101010", "p": "000110101110100",
    "q": "000011101011001", "r": "000110101100100", "s": "000011110001110", "t": "010111010010011",
    "u": "000101101101011", "v": "000101101101010", "w": "000101101111111", "x": "000101010101101",
    "y": "000101101011110", "z": "000111001100111", "B": "110101110101110", "L": "100100100100111",
    "P": "110101110100100", "T": "111010010010010", "C": "011100100100011", "I": "111010010010111",
    "N": "101111111111101", "S": "011100010001110", ":": "000010000010000",
}


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def dot(self, x, y, rgb):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(rgb)

    def rect(self, x0, y0, x1, y1, rgb):
        for y in range(min(y0, y1), max(y0, y1) + 1):
            for x in range(min(x0, x1), max(x0, x1) + 1):
                self.dot(x, y, rgb)

    def line(self, x0, y0, x1, y1, rgb, width=1):
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.rect(x0 - width // 2, y0 - width // 2, x0 + (width - 1) // 2, y0 + (width - 1) // 2, rgb)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x, y, s, rgb=(0, 0, 0), scale=2):
        for ch in s:
            glyph = FONT.get(ch, FONT.get(ch.lower(), FONT[" "]))
            for r in range(5):
                for c in range(3):
                    if glyph[r * 3 + c] == "1":
                        self.rect(x + c * scale, y + r * scale, x + c * scale + scale - 1, y + r * scale + scale - 1, rgb)
            x += 4 * scale
        return x

    @staticmethod
    def width(s, scale=2):
        return len(s) * 4 * scale

    def png(self, path):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def nice_step(top):
    for mag in range(0, 9):
        for step in (1, 2, 2.5, 5):
            s = step * 10 ** mag
            if top / s <= 6:
                return s
    return top / 5


def plot_fallback(rows, out, title):
    import math
    w, h = 900, 560
    left, right, top, bottom = 110, 250, 60, 80
    c = Canvas(w, h)
    xs = [r["services"] for r in rows]
    ymax = max([r[col] for r in rows for col, _, _ in SERIES if r.get(col) is not None] + [1]) * 1.1
    step = nice_step(ymax)
    ymax = math.ceil(ymax / step) * step
    lx0, lx1 = math.log10(max(min(xs), 1)), math.log10(max(max(xs), 10))
    if lx1 - lx0 < 1e-9:
        lx0, lx1 = lx0 - 1, lx1 + 1
    pad = (lx1 - lx0) * 0.05
    lx0, lx1 = lx0 - pad, lx1 + pad

    def X(v):
        return int(left + (math.log10(max(v, 1e-9)) - lx0) / (lx1 - lx0) * (w - left - right))

    def Y(v):
        return int(h - bottom - v / ymax * (h - top - bottom))

    grey, black = (0xdd, 0xdd, 0xdd), (0, 0, 0)
    y = 0.0
    while y <= ymax + 1e-9:
        c.line(left, Y(y), w - right, Y(y), grey)
        label = f"{int(y):,}"
        c.text(left - 10 - Canvas.width(label), Y(y) - 5, label)
        y += step
    for x in xs:
        c.line(X(x), top, X(x), h - bottom, grey)
        label = f"{int(x):,}"
        c.text(X(x) - Canvas.width(label) // 2, h - bottom + 10, label)
    c.line(left, h - bottom, w - right, h - bottom, black, 2)
    c.line(left, top, left, h - bottom, black, 2)
    c.text(left, 20, title[:90])
    xl = "services (log scale)"
    c.text(left + (w - left - right - Canvas.width(xl)) // 2, h - 35, xl)
    c.text(10, top - 30, "connections/s")
    ly = top + 10
    for col, label, rgb in SERIES:
        pts = [(X(r["services"]), Y(r[col])) for r in rows if r.get(col) is not None]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            c.line(x0, y0, x1, y1, rgb, 3)
        for x0, y0 in pts:
            c.rect(x0 - 4, y0 - 4, x0 + 4, y0 + 4, rgb)
        if pts:
            c.rect(w - right + 20, ly, w - right + 40, ly + 10, rgb)
            c.text(w - right + 48, ly, label.split(" (")[0])
            ly += 24
    c.png(out)


def main():
    args = sys.argv[1:]
    tsv = args[0] if args else None
    if tsv is None:
        found = sorted(glob.glob(os.path.join(HERE, "results", "service-scale-*.tsv")))
        if not found:
            sys.exit("no TSV given and none in bench/services/results")
        tsv = found[-1]
    out = args[1] if len(args) > 1 else os.path.join(ROOT, "docs", "images", "service-scale.png")
    rows = read(tsv)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    stamp = os.path.basename(tsv).replace("service-scale-", "").replace(".tsv", "")
    title = f"Services: socket-LB vs kube-proxy, one client, same machine ({stamp})"
    plt = None if os.environ.get("PLOT_FALLBACK") else matplotlib_or_reexec()
    if plt is not None:
        plot_matplotlib(plt, rows, out, title)
    else:
        plot_fallback(rows, out, title)
    print(out)


if __name__ == "__main__":
    main()
