"""The OpenAPI rule of a text that its validator strips of white space (DRF's CharField
with `trim_whitespace`, and the generation parameters' own validator), said exactly, so
that the schema and the server agree on a padded, a blank and a too long text.
core.api.AutoSchema gives it to every such field of a body; generation.rules to the
prompts, which have their own validator."""


def _whitespace_class() -> str:
    """The characters str.strip() takes off a text's ends (str.isspace), as a regex class
    of \\u escapes, which ECMA-262 and Python read alike."""
    codes = [code for code in range(0x110000) if chr(code).isspace()]
    runs, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], None], strict=True):
        if code != previous + 1:
            runs.append((start, previous))
            start = code
    return "".join(f"\\u{low:04x}" + (f"-\\u{high:04x}" if high > low else "")
                   for low, high in runs)


WHITESPACE = _whitespace_class()

# Any text with no NUL: DRF's and Django's text fields refuse one (core.api gives it to
# every other text of a body, core.filters to a free-text filter).
NO_NUL = "^[^\\x00]*$"


def text_rule(longest: int | None, *, required: bool = False) -> dict:
    """The OpenAPI rule of a text that its validator strips of whitespace and then wants
    1 (`required`) or 0 to `longest` (None: any number of) characters long, said exactly:
    a pattern of the stripped text between any whitespace, with no NUL anywhere (DRF
    refuses one). A required text's rule also says `minLength: 1`, so that the schema
    offers no empty alternative (core.api.AutoSchema)."""
    edge = f"[^\\x00{WHITESPACE}]"  # a character the stripped text starts and ends with
    middle = "[^\\x00]*" if longest is None else f"[^\\x00]{{0,{max(longest - 2, 0)}}}"
    stripped = edge if longest == 1 else f"{edge}(?:{middle}{edge})?"
    if not required:
        stripped = f"(?:{stripped})?"
    rule = {"type": "string", "pattern": f"^[{WHITESPACE}]*{stripped}[{WHITESPACE}]*$"}
    return {**rule, "minLength": 1} if required else rule
