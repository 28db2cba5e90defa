"""CSV files that people open in spreadsheets: one writer for every CSV the app or a script exports.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab, carriage return
or line break, which some spreadsheets skip before reading one of those) is a formula
to Excel, LibreOffice Calc and Google Sheets: a label ``=HYPERLINK("http://...")`` in an
exported file would run when the file is opened ("CSV injection", OWASP). Following
OWASP's advice, :func:`safe_cell` prefixes such text cells with a single quote, which
spreadsheets show as text. Numbers are never touched: ``-0.5`` written as a number stays
a number; only strings are neutralised, so a label ``-1`` becomes ``'-1``.

Examples
--------
>>> csv_bytes([[1, -0.5, "=1+1"], [2, 3, "plain"]], header=["row", "x", "label"]).decode()
"row,x,label\\n1,-0.5,'=1+1\\n2,3,plain\\n"
"""

import numbers

__all__ = ["FORMULA_STARTS", "safe_cell", "csv_bytes"]

#: Text cells starting with one of these are formulas to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value):
    """``value`` as a spreadsheet should show it: text starting like a formula gets a leading ``'``.

    Numbers (Python or numpy, including bools) and ``None`` are returned unchanged.

    Examples
    --------
    >>> safe_cell("@SUM(A1)"), safe_cell("+1+1"), safe_cell(-3), safe_cell("ok")
    ("'@SUM(A1)", "'+1+1", -3, 'ok')
    """
    if value is None or isinstance(value, numbers.Number):
        return value
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "biuf":
        return value  # a numpy scalar number
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(rows, header=None):
    """UTF-8 CSV bytes of ``rows`` (an iterable of sequences), every cell through :func:`safe_cell`.

    ``header`` (a sequence of column names, also neutralised) comes first when given.
    Lines end with ``\\n``; a cell holding a comma, a quote, a carriage return or a line
    break is quoted (Python's csv writer leaves a lone carriage return unquoted when lines end
    with ``\\n``, which splits the row in every reader). ``None`` is an empty cell.
    """
    lines = [] if header is None else [_line(header)]
    lines.extend(_line(row) for row in rows)
    return "".join(lines).encode("utf-8")


def _line(row):
    return ",".join(_field(safe_cell(v)) for v in row) + "\n"


def _field(value):
    if value is None:
        return ""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
