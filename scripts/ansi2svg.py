#!/usr/bin/env python3
"""Renders screens captured with `tmux capture-pane -e -p` (text with SGR colour codes) as SVG.

    ansi2svg.py OUT.svg FRAME.ans                 one screen
    ansi2svg.py --animate SECS OUT.svg F1 F2 …    the screens in turn, SECS each, looping (CSS only)

Standard library only. Cells are laid out on a fixed grid, so box drawing lines up whatever the
viewer's monospace font is.
"""

import html
import re
import sys

CELL_W = 8.4
CELL_H = 17.0
FONT = 14
PAD = 10
DEFAULT_FG = "#d0d0d0"
DEFAULT_BG = "#1c1c1c"

BASE16 = [
    "#1c1c1c", "#d75f5f", "#87af5f", "#d7af5f", "#5f87af", "#af87af", "#5fafaf", "#d0d0d0",
    "#767676", "#ff8787", "#afd787", "#ffd787", "#87afd7", "#d7afd7", "#87d7d7", "#ffffff",
]


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        r, g, b = steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    v = 8 + (n - 232) * 10
    return f"#{v:02x}{v:02x}{v:02x}"


class Style:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def key(self):
        return (self.fg, self.bg, self.bold, self.dim, self.italic, self.underline, self.reverse)

    def apply(self, params):
        codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.reset()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 3:
                self.italic = True
            elif c == 4:
                self.underline = True
            elif c == 7:
                self.reverse = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 23:
                self.italic = False
            elif c == 24:
                self.underline = False
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = BASE16[c - 30]
            elif 90 <= c <= 97:
                self.fg = BASE16[c - 90 + 8]
            elif 40 <= c <= 47:
                self.bg = BASE16[c - 40]
            elif 100 <= c <= 107:
                self.bg = BASE16[c - 100 + 8]
            elif c == 39:
                self.fg = None
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    colour = xterm256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    colour = "#{:02x}{:02x}{:02x}".format(*codes[i + 2:i + 5])
                    i += 4
                else:
                    colour = None
                if c == 38:
                    self.fg = colour
                else:
                    self.bg = colour
            i += 1


SGR = re.compile(r"\x1b\[([0-9;]*)m")
OTHER_ESC = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Za-z0-9])")


def parse(text):
    """Rows of (column, chars, style key) runs."""
    style = Style()
    rows = []
    for line in text.rstrip("\n").split("\n"):
        runs = []
        col = 0
        pos = 0
        for m in SGR.finditer(line):
            chunk = OTHER_ESC.sub("", line[pos:m.start()])
            if chunk:
                runs.append((col, chunk, style.key()))
                col += len(chunk)
            style.apply(m.group(1))
            pos = m.end()
        chunk = OTHER_ESC.sub("", line[pos:])
        if chunk:
            runs.append((col, chunk, style.key()))
        rows.append(runs)
    return rows


def screen_svg(rows, cols, lines, ident):
    out = []
    for y, runs in enumerate(rows[:lines]):
        for col, chars, (fg, bg, bold, dim, italic, underline, reverse) in runs:
            fg_c, bg_c = fg or DEFAULT_FG, bg
            if reverse:
                fg_c, bg_c = (bg or DEFAULT_BG), (fg or DEFAULT_FG)
            x = PAD + col * CELL_W
            top = PAD + y * CELL_H
            if bg_c:
                out.append(
                    f'<rect x="{x:.1f}" y="{top:.1f}" width="{len(chars) * CELL_W:.1f}" '
                    f'height="{CELL_H:.1f}" fill="{bg_c}"/>'
                )
            if not chars.strip():
                continue
            attrs = [f'fill="{fg_c}"']
            if bold:
                attrs.append('font-weight="bold"')
            if dim:
                attrs.append('opacity="0.6"')
            if italic:
                attrs.append('font-style="italic"')
            if underline:
                attrs.append('text-decoration="underline"')
            out.append(
                f'<text x="{x:.1f}" y="{top + CELL_H * 0.78:.1f}" textLength="{len(chars) * CELL_W:.1f}" '
                f'lengthAdjust="spacingAndGlyphs" {" ".join(attrs)}>{html.escape(chars)}</text>'
            )
    return f'<g id="{ident}">' + "".join(out) + "</g>"


def main(argv):
    animate = None
    if argv[:1] == ["--animate"]:
        animate = float(argv[1])
        argv = argv[2:]
    if len(argv) < 2:
        sys.exit(__doc__)
    out_path, frames = argv[0], argv[1:]
    screens = [parse(open(f, encoding="utf-8", errors="replace").read()) for f in frames]
    cols = max((r[-1][0] + len(r[-1][1]) for s in screens for r in s if r), default=80)
    lines = max(len(s) for s in screens)
    width = PAD * 2 + cols * CELL_W
    height = PAD * 2 + lines * CELL_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" '
        f'font-size="{FONT}" xml:space="preserve">',
        f'<rect width="100%" height="100%" rx="6" fill="{DEFAULT_BG}"/>',
    ]
    if animate and len(screens) > 1:
        n = len(screens)
        total = animate * n
        share = 100.0 / n
        parts.append(
            "<style>g.f{opacity:0;animation:show %.1fs step-end infinite}"
            "@keyframes show{0%%{opacity:1}%.3f%%{opacity:0}100%%{opacity:0}}</style>" % (total, share)
        )
        for i, s in enumerate(screens):
            g = screen_svg(s, cols, lines, f"f{i}")
            g = g.replace(
                f'<g id="f{i}">',
                f'<g id="f{i}" class="f" style="animation-delay:{i * animate:.1f}s">',
            )
            parts.append(g)
    else:
        parts.append(screen_svg(screens[0], cols, lines, "f0"))
    parts.append("</svg>")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
