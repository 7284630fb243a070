"""Invoice PDFs drawn with fpdf2: the document `templates/billing/invoice_document.html` shows in the dashboard
(same blocks, columns, wording and formatting helpers), laid out in code.

An HTML layout engine (WeasyPrint) spent 90 to 450 ms of CPU on an invoice of 10 to 60 lines; measuring text with the
font's advance widths and placing it directly takes a few milliseconds, and embedding the used glyphs most of the
rest. The layout is computed first (wrapped lines, page breaks), so the footer knows the page count, then drawn.
"""

import copy
import io
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.template.defaultfilters import date as date_format
from fontTools import subset as font_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from portal.templatetags.hangar import money

FONT_PACKAGE = "fonts-dejavu-core"
# Where Debian (and Ubuntu), Fedora and Homebrew install DejaVu Sans.
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
    Path("/opt/homebrew/share/fonts"),
    Path("/usr/local/share/fonts"),
)
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FAMILY = "dejavu"

# The scripts nearly every invoice is written in: Latin (with its extensions), Greek, Cyrillic, punctuation,
# currency and letterlike signs. fpdf2 reads the whole embedded font again for every document it writes, so a font
# cut down to these (1,400 characters instead of 5,900) makes a PDF about three times faster; a document with any
# other character DejaVu Sans has gets the whole font instead.
COMPACT_RANGES = (
    (0x0020, 0x007E),
    (0x00A0, 0x024F),
    (0x0370, 0x03FF),
    (0x0400, 0x04FF),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x215F),
)
# Tables no unshaped text uses; fpdf2 leaves most of them out of what it embeds anyway, but reads them first.
UNUSED_TABLES = ["GSUB", "GPOS", "GDEF", "kern", "hdmx", "FFTM", "MATH"]

MM_PER_PT = 25.4 / 72
PAGE_WIDTH, PAGE_HEIGHT = 210.0, 297.0  # A4, mm
LEFT, RIGHT, TOP, BOTTOM = 16.0, PAGE_WIDTH - 16.0, 18.0, PAGE_HEIGHT - 18.0
WIDTH = RIGHT - LEFT
LEADING = 1.2  # line height as a multiple of the font size
CELL_X, CELL_Y = 1.5, 1.6  # table cell padding, mm

EN_DASH = "\N{EN DASH}"
INK, MUTED, RULE = (16, 24, 40), (102, 112, 133), (208, 213, 221)


@dataclass(frozen=True)
class Type:
    """How a run of text is set: weight, size in points, colour."""

    bold: bool = False
    size: float = 9.5
    color: tuple = INK

    @property
    def style(self) -> str:
        return "B" if self.bold else ""

    @property
    def line_height(self) -> float:
        return self.size * LEADING * MM_PER_PT


BODY = Type()
STRONG = Type(bold=True)
MUTED_BODY = Type(color=MUTED)
SMALL = Type(size=8)
SMALL_MUTED = Type(size=8, color=MUTED)
TITLE = Type(bold=True, size=16)
HEADING = Type(bold=True, size=11)
COLUMN_HEAD = Type(bold=True, size=7.5, color=MUTED)
TOTAL = Type(bold=True, size=11)


# Fonts ---------------------------------------------------------------------------------------------------------


def font_path(name: str) -> Path:
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise ImproperlyConfigured(
        f"Invoice PDFs need the font {name}, found in none of {', '.join(str(f) for f in FONT_DIRS)}: "
        f"install the Debian package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE})."
    )


@dataclass(frozen=True)
class Face:
    """One style of DejaVu Sans, read once per process: the bytes embedded and the parsed metrics."""

    blob: bytes
    master: TTFFont

    def covers(self, character: str) -> bool:
        return ord(character) in self.master.cmap

    def attach(self, pdf: FPDF) -> None:
        # fpdf2's add_font() parses the font again for every document (5 ms per style even cut down) and subsets
        # it in place when the document is written, so the parsed metrics are shared and each document gets its
        # own copy of the font tables and its own record of the glyphs it used.
        font = copy.copy(self.master)
        font.i = len(pdf.fonts) + 1
        font.ttfont = ttLib.TTFont(io.BytesIO(self.blob), recalcTimestamp=False, lazy=True)
        font.subset = SubsetMap(font)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        pdf.fonts[font.fontkey] = font


@cache
def faces(compact: bool) -> dict[str, Face]:
    """DejaVu Sans and DejaVu Sans Bold, cut down to COMPACT_RANGES or whole (without tables left unused)."""
    loaded = {}
    for style, name in FONT_FILES.items():
        font = ttLib.TTFont(font_path(name), recalcTimestamp=False)
        if compact:
            options = font_subset.Options(notdef_outline=True, recommended_glyphs=True, glyph_names=True)
            options.layout_features = []
            options.name_IDs = ["*"]
            options.drop_tables += UNUSED_TABLES
            subsetter = font_subset.Subsetter(options)
            subsetter.populate(unicodes=[code for first, last in COMPACT_RANGES for code in range(first, last + 1)])
            subsetter.subset(font)
        else:
            for table in UNUSED_TABLES:
                if table in font:
                    del font[table]
        buffer = io.BytesIO()
        font.save(buffer)  # write-ok: a font into memory, not a model
        blob = buffer.getvalue()
        master = TTFFont(FPDF(), io.BytesIO(blob), f"{FAMILY}{style}", style)
        loaded[style] = Face(blob=blob, master=master)
    return loaded


# Layout --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    x: float
    baseline: float
    text: str
    type: Type


@dataclass(frozen=True)
class Rule:
    left: float
    right: float
    y: float
    width_pt: float
    color: tuple


@dataclass
class Layout:
    """Lines of text and rules placed on pages, top to bottom; `y` is where the next block starts."""

    faces: dict[str, Face]
    pages: list[list] = field(default_factory=lambda: [[]])
    y: float = TOP

    def width(self, text: str, type: Type) -> float:
        widths = self.faces[type.style].master.cw
        return sum(widths[ord(character)] for character in text) * type.size / 1000 * MM_PER_PT

    def wrap(self, text: str, type: Type, width: float) -> list[str]:
        """Lines of at most `width` mm: broken at spaces, inside a word only when the word alone is wider (after
        its last hyphen that fits, else anywhere)."""
        lines = []
        for paragraph in str(text).splitlines() or [""]:
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.width(candidate, type) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                line = ""
                for character in word:
                    if line and self.width(line + character, type) > width:
                        cut = line.rfind("-") + 1 or len(line)
                        lines.append(line[:cut])
                        line = line[cut:]
                    line += character
            lines.append(line)
        return lines

    def fits(self, height: float) -> bool:
        return self.y + height <= BOTTOM

    def new_page(self) -> None:
        self.pages.append([])
        self.y = TOP

    def line(self, x: float, top: float, text: str, type: Type, *, align: str = "L", width: float = 0) -> None:
        """One line of text in a line box starting at `top`; right-aligned ones end at x + width."""
        if align == "R":
            x += width - self.width(text, type)
        baseline = top + type.line_height / 2 + 0.35 * type.size * MM_PER_PT
        self.pages[-1].append(Text(x, baseline, text, type))

    def lines(self, x: float, top: float, lines: list[str], type: Type, *, align: str = "L", width: float = 0):
        for line in lines:
            self.line(x, top, line, type, align=align, width=width)
            top += type.line_height
        return top

    def rule(self, y: float, *, left: float = LEFT, right: float = RIGHT, width_pt=0.3, color=RULE) -> None:
        self.pages[-1].append(Rule(left, right, y, width_pt, color))

    def paragraph(self, text: str, type: Type, *, x: float = LEFT, width: float = WIDTH) -> None:
        """Wrapped text that may continue on the next page."""
        for line in self.wrap(text, type, width):
            if not self.fits(type.line_height):
                self.new_page()
            self.line(x, self.y, line, type)
            self.y += type.line_height

    def characters(self) -> set[str]:
        return {character for page in self.pages for item in page if isinstance(item, Text) for character in item.text}


# The invoice ---------------------------------------------------------------------------------------------------

# (heading, width in mm, right-aligned): the columns of the HTML table, sized so amounts and rates stay on one line.
COLUMNS = (
    ("Resource", 30.0, False),
    ("Plan", 22.0, False),
    ("Period", 26.0, False),
    ("Usage", 17.0, True),
    ("Rate", 29.0, True),
    ("Monthly cap", 26.0, True),
    ("Amount", 28.0, True),
)
assert abs(sum(width for _, width, _ in COLUMNS) - WIDTH) < 0.01


def _head(layout: Layout, context: dict) -> None:
    invoice, currency = context["invoice"], context["currency"]
    title = f"Invoice {invoice.number}" if invoice.number else "Draft invoice"
    top = layout.y
    layout.line(LEFT, top, title, TITLE)
    subtitle = f"{date_format(invoice.period_start, 'F Y')} · {invoice.get_status_display()}"
    left_bottom = top + TITLE.line_height + 2
    layout.line(LEFT, left_bottom, subtitle, MUTED_BODY)
    left_bottom += BODY.line_height

    issued = date_format(invoice.finalized_at, "j M Y") if invoice.finalized_at else "not yet (estimate)"
    specs = [("Issued", [(issued, BODY)])]
    total = [(money(invoice.total, currency), STRONG)]
    if invoice.status == "draft":
        total.append((" so far", BODY))
    specs.append(("Total", total))
    if invoice.paid_at:
        specs.append(("Paid", [(date_format(invoice.paid_at, "j M Y"), BODY)]))
    if invoice.voided_at:
        specs.append(("Voided", [(date_format(invoice.voided_at, "j M Y"), BODY)]))
    x, right_bottom = LEFT + 106, top + 1
    for term, runs in specs:
        layout.line(x, right_bottom, term, STRONG)
        run_x = x + 20
        for text, type in runs:
            layout.line(run_x, right_bottom, text, type)
            run_x += layout.width(text, type)
        right_bottom += BODY.line_height + 1
    layout.y = max(left_bottom, right_bottom) + 8


def _parties(layout: Layout, context: dict) -> None:
    sender, invoice = context["sender"], context["invoice"]
    sent_by = [sender["name"]]
    if sender["address"]:
        sent_by += sender["address"].splitlines()
    if sender["registration"]:
        sent_by.append(f"Registration no. {sender['registration']}")
    if sender["vat_id"]:
        sent_by.append(f"VAT id {sender['vat_id']}")
    if sender["email"]:
        sent_by.append(sender["email"])
    if invoice.number:
        billed = [invoice.bill_to_name, *invoice.bill_to_address.splitlines()]
        if invoice.bill_to_vat_id:
            billed.append(f"VAT id {invoice.bill_to_vat_id}")
    else:
        billed = [invoice.tenant.name]
    bottom = layout.y
    for x, heading, texts in ((LEFT, "From", sent_by), (LEFT + WIDTH / 2, "Bill to", billed)):
        width = WIDTH / 2 - 6
        lines = [line for text in texts for line in layout.wrap(text, BODY, width)]
        layout.line(x, layout.y, heading, STRONG)
        bottom = max(bottom, layout.lines(x, layout.y + BODY.line_height, lines, BODY))
    layout.y = bottom + 8


def _line_cells(line, currency: str) -> list[list[tuple[str, Type]]]:
    """Each column's paragraphs for one invoice line, as the HTML table writes them."""
    # The column is too narrow for the whole period: it breaks after the dash, never inside a date.
    period = [
        (f"{date_format(line.period_from, 'j M H:i')} {EN_DASH}", SMALL),
        (date_format(line.period_to, "j M H:i"), SMALL),
    ]
    if line.is_traffic:
        usage, rate, cap = f"{line.quantity} GB", f"{money(line.hourly_rate, 4)}/GB", [("—", MUTED_BODY)]
    else:
        usage, rate = f"{line.hours} h", f"{money(line.hourly_rate, 4)}/h"
        cap = [(money(line.monthly_price, currency), BODY)]
    amount = [(money(line.amount, currency), BODY)]
    if line.capped:
        amount.append(("(capped)", SMALL_MUTED))
    return [
        [(line.resource_name, BODY), (line.get_resource_type_display(), SMALL_MUTED)],
        [(line.plan_name, BODY)],
        period,
        [(usage, BODY)],
        [(rate, BODY)],
        cap,
        amount,
    ]


def _row(layout: Layout, cells: list[list[tuple[str, Type]]], *, repeat_head=None) -> None:
    """One table row; rows never split, and a new page starts with the column headings again."""
    wrapped = []
    for (_, width, right), paragraphs in zip(COLUMNS, cells, strict=True):
        inner = width - 2 * CELL_X
        wrapped.append([(layout.wrap(text, type, inner), type, right) for text, type in paragraphs])
    height = 2 * CELL_Y + max(sum(len(lines) * type.line_height for lines, type, _ in cell) for cell in wrapped)
    if not layout.fits(height) and repeat_head is not None:
        layout.new_page()
        repeat_head(layout)
    x = LEFT
    for (_, width, _), cell in zip(COLUMNS, wrapped, strict=True):
        top = layout.y + CELL_Y
        for lines, type, right in cell:
            top = layout.lines(x + CELL_X, top, lines, type, align="R" if right else "L", width=width - 2 * CELL_X)
        x += width
    layout.y += height
    layout.rule(layout.y)


def _column_heads(layout: Layout) -> None:
    _row(layout, [[(heading.upper(), COLUMN_HEAD)] for heading, _, _ in COLUMNS])


def _lines_table(layout: Layout, context: dict) -> None:
    currency = context["currency"]
    _column_heads(layout)
    for line in context["lines"]:
        _row(layout, _line_cells(line, currency), repeat_head=_column_heads)
    if not context["lines"]:
        layout.line(LEFT + CELL_X, layout.y + CELL_Y, "No usage in this month.", MUTED_BODY)
        layout.y += BODY.line_height + 2 * CELL_Y
        layout.rule(layout.y)


def _totals(layout: Layout, context: dict) -> None:
    invoice, currency = context["invoice"], context["currency"]
    rows = [
        ("Subtotal", money(invoice.subtotal, currency), BODY),
        (f"Tax ({invoice.tax_rate} %)", money(invoice.tax, currency), BODY),
        ("Total", money(invoice.total, currency), TOTAL),
    ]
    amount_width = max(COLUMNS[-1][1] - 2 * CELL_X, *(layout.width(amount, type) for _, amount, type in rows))
    height = sum(type.line_height + 2 * CELL_Y for _, _, type in rows)
    if not layout.fits(height):
        layout.new_page()
    for label, amount, type in rows:
        if type is TOTAL:
            layout.rule(layout.y, width_pt=0.8, color=INK)
        top = layout.y + CELL_Y
        layout.line(LEFT, top, label, type, align="R", width=WIDTH - amount_width - 3 * CELL_X)
        layout.line(RIGHT - CELL_X - amount_width, top, amount, type, align="R", width=amount_width)
        layout.y += type.line_height + 2 * CELL_Y


def _credit_notes(layout: Layout, context: dict) -> None:
    if not context["credit_notes"]:
        return
    currency = context["currency"]
    layout.y += 4
    if not layout.fits(HEADING.line_height + 2 + BODY.line_height):
        layout.new_page()
    layout.line(LEFT, layout.y, "Credit notes", HEADING)
    layout.y += HEADING.line_height + 2
    for note in context["credit_notes"]:
        created = date_format(note.created_at, "j M Y")
        text = f"{note.number} ({created}): {money(note.amount, currency)} — {note.reason}"
        if not layout.fits(BODY.line_height):
            layout.new_page()
        layout.line(LEFT + 2, layout.y, "•", BODY)
        layout.paragraph(text, BODY, x=LEFT + 6, width=WIDTH - 6)


def _closing_note(invoice, has_traffic: bool) -> str:
    if invoice.status == "draft":
        note = "Estimate: this draft is refreshed every few minutes until the month ends."
    elif invoice.total_cents == 0:
        note = "No payment is due for this invoice."
    elif invoice.status == "paid":
        note = "Paid — thank you."
    elif invoice.status == "void":
        note = "This invoice was voided; nothing is due."
    else:
        note = (
            "Payment due. Every started hour is billed at the hourly rate (monthly price / 672), never more than "
            "the monthly price per month."
        )
    if has_traffic:
        note += (
            " Outbound traffic beyond what your machines include (pooled, pro rata by hours) is billed per started GB."
        )
    return note


def layout_invoice(context: dict, faces: dict[str, Face]) -> Layout:
    layout = Layout(faces=faces)
    _head(layout, context)
    _parties(layout, context)
    _lines_table(layout, context)
    _totals(layout, context)
    _credit_notes(layout, context)
    layout.y += 4
    layout.paragraph(_closing_note(context["invoice"], context["has_traffic"]), SMALL_MUTED)
    return layout


def _draw(layout: Layout, *, title: str, author: str, created=None) -> bytes:
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_lang("en")
    if created is not None:
        pdf.set_creation_date(created)  # a frozen invoice renders to the same bytes again
    for face in layout.faces.values():
        face.attach(pdf)
    count = len(layout.pages)
    current = None
    for number, items in enumerate(layout.pages, start=1):
        pdf.add_page()
        footer = f"Page {number} of {count}"
        items = [*items, Text(RIGHT - layout.width(footer, SMALL_MUTED), PAGE_HEIGHT - 9, footer, SMALL_MUTED)]
        for item in items:
            if isinstance(item, Rule):
                pdf.set_draw_color(*item.color)
                pdf.set_line_width(item.width_pt * MM_PER_PT)
                pdf.line(item.left, item.y, item.right, item.y)
                continue
            if item.type != current:
                pdf.set_font(FAMILY, item.type.style, item.type.size)
                pdf.set_text_color(*item.type.color)
                current = item.type
            pdf.text(item.x, item.baseline, item.text)
    return bytes(pdf.output())


def render_invoice(context: dict) -> bytes:
    """The invoice PDF from `billing.documents.invoice_context()`, the data the HTML document shows."""
    compact = faces(compact=True)
    layout = layout_invoice(context, compact)
    if not all(compact[""].covers(character) for character in layout.characters()):
        layout = layout_invoice(context, faces(compact=False))
    invoice = context["invoice"]
    return _draw(layout, title=invoice.title, author=context["sender"]["name"], created=invoice.finalized_at)
