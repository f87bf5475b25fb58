"""The report's tables written out: Markdown (report.md), aligned plain text (the terminal) and LaTeX
(tables.tex). A Style says how one format writes a cell (its ± sign, its under-trained mark, its
marks); the value itself is the mean ± std with the std to two significant digits.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from aebench.metrics.directions import ARROWS, HIGHER, LOWER
from aebench.report.stats import BEST, TIE
from aebench.report.summary import UNTESTED
from aebench.report.tables import UNDER_TRAINED_MARK, Cell, Row, Table, qualifier_note


def format_value(cell: Cell, row_seeds: int, pm: str = "±") -> str:
    """Mean ± std with the std to two significant digits and the mean to the same decimals."""
    if cell.mean is None or math.isnan(cell.mean):
        text = "nan"
    elif math.isnan(cell.std) or cell.std == 0 or math.isinf(cell.std):
        text = f"{cell.mean:.4g}" + ("" if math.isnan(cell.std) else f" {pm} {cell.std:g}")
    else:
        decimals = min(8, max(0, 1 - math.floor(math.log10(cell.std))))
        text = f"{cell.mean:.{decimals}f} {pm} {cell.std:.{decimals}f}"
    return text if cell.n_seeds == row_seeds else f"{text} (n={cell.n_seeds})"


def format_rank(rank: float) -> str:
    return "–" if math.isnan(rank) else f"{rank:.2f}"


_PM = "PLUSMINUS"  # stands for the ± sign until the format's own sign replaces it (after escaping)


@dataclass(frozen=True)
class Style:
    """How one output format writes a cell: its ± sign, its under-trained mark and a template per mark."""

    pm: str
    dagger: str
    marks: dict[str, str]  # BEST / TIE / UNTESTED -> template of the cell's text ("{}")
    escape: Callable[[str], str] = str

    def cell(self, row: Row, column: str) -> str:
        if column not in row.cells:
            return ""
        cell = row.cells[column]
        text = self.escape(format_value(cell, row.seeds, _PM)).replace(_PM, self.pm)
        return self.marks.get(cell.mark, "{}").format(text + (self.dagger if row.under_trained else ""))


MARKDOWN = Style("±", UNDER_TRAINED_MARK, {BEST: "**{}**", TIE: "{} ≈", UNTESTED: "{} (untested)"})
TERMINAL = Style("+-", UNDER_TRAINED_MARK, {BEST: "{}*", TIE: "{} ~", UNTESTED: "{} (untested)"})
TERMINAL_LEGEND = ("mean +- std over seeds; * significantly best, ~ not significantly worse than the best (paired t-test, Holm), "
                   "(untested) best mean without a test")


def _header(table: Table, column: str) -> str:
    arrow = ARROWS[table.directions[column]]
    return f"{column} {arrow}" if arrow else column


def markdown_table(table: Table) -> str:
    header = ["model", "seeds", *(_header(table, c) for c in table.columns), "mean rank"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", "---:"] + ["---:"] * (len(header) - 2)) + "|"]
    for row in table.rows:
        values = [MARKDOWN.cell(row, c) for c in table.columns]
        lines.append("| " + " | ".join([md_escape(row.label), _seeds_text(row), *values, format_rank(row.rank)]) + " |")
    return "\n".join(lines)


def _seeds_text(row: Row) -> str:
    return f"{row.seeds} ({row.under_trained} under-trained)" if row.under_trained else str(row.seeds)


def md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def plain_table(table: Table) -> str:
    """Aligned text for the terminal, marked as TERMINAL_LEGEND says."""
    header = ["model", "seeds", *(_header(table, c) for c in table.columns), "mean rank"]
    body = [[row.label, _seeds_text(row), *(TERMINAL.cell(row, c) for c in table.columns), format_rank(row.rank)]
            for row in table.rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


LATEX = Style(r"$\pm$", r"$^\dagger$", {BEST: r"\textbf{{{}}}", TIE: r"{} $\approx$", UNTESTED: "{} (untested)"},
              latex_escape)


def latex_table(table: Table) -> str:
    arrows = {HIGHER: r" $\uparrow$", LOWER: r" $\downarrow$", None: ""}
    header = ["Model", "Seeds", *(latex_escape(c) + arrows[table.directions[c]] for c in table.columns), "Mean rank"]
    lines = [r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(table.dataset)}: mean $\pm$ standard deviation over seeds. Bold: significantly "
             r"better than every other model (paired t-test over shared seeds, Holm, $\alpha = 0.05$); $\approx$: not "
             r"significantly worse than the best mean (not a claim of equality); (untested): best mean, no test possible. "
             + latex_escape(qualifier_note(table)) + "}",
             rf"\label{{tab:{re.sub(r'[^A-Za-z0-9-]', '-', table.dataset)}}}",
             r"\resizebox{\textwidth}{!}{%",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for row in table.rows:
        values = [LATEX.cell(row, c) for c in table.columns]
        lines.append(" & ".join([latex_escape(row.label), latex_escape(_seeds_text(row)), *values,
                                 format_rank(row.rank).replace("–", "--")]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines)
