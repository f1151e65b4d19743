"""What the uploads' media types mean, for schemathesis (loaded through SCHEMATHESIS_HOOKS by
imagineer.fuzzing.fuzz).

The schema says which files a multipart field takes (`encoding.contentType`, from the
field's `contentMediaType`: core.api.AutoSchema.form_bodies); schemathesis knows no
generator for most media types and would send any bytes under the name. Here each gets
real files of its kind: images PIL makes, a zip dataset of an image and its caption, a CSV
with a header row, and the LoRA the fuzz run uploads (IMAGINEER_FUZZ_LORA). Without them
the positive data check counts "not a PNG" as a valid request refused.
"""

import csv
import io
import os
import zipfile

import schemathesis
from hypothesis import strategies as st


def image_bytes(size, color, kind):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


SIZES = st.tuples(st.integers(8, 96), st.integers(8, 96))
COLORS = st.tuples(*[st.integers(0, 255)] * 3)


def images(kind):
    return st.builds(image_bytes, SIZES, COLORS, st.just(kind))


@st.composite
def datasets(draw):
    """A zip dataset as export makes it: images and their .txt captions."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for number in range(draw(st.integers(1, 3))):
            archive.writestr(f"{number}.png", draw(images("PNG")))
            caption = draw(st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                                   max_size=40))
            archive.writestr(f"{number}.txt", caption)
    return out.getvalue()


@st.composite
def csv_files(draw):
    """A prompt set's items: a header row naming the template's fields, and rows."""
    words = st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1,
                    max_size=20)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["subject"])
    for value in draw(st.lists(words, min_size=1, max_size=5)):
        writer.writerow([value])
    return out.getvalue().encode()


# A file field without a single media type (a list of images, an id-or-PNG mask): images.
schemathesis.openapi.format("binary", st.one_of(images("PNG"), images("JPEG"),
                                                images("WEBP")))
schemathesis.openapi.media_type("image/png", images("PNG"))
schemathesis.openapi.media_type("image/jpeg", images("JPEG"))
schemathesis.openapi.media_type("image/webp", images("WEBP"))
schemathesis.openapi.media_type("application/zip", datasets())
schemathesis.openapi.media_type("text/csv", csv_files())
if os.environ.get("IMAGINEER_FUZZ_LORA"):
    with open(os.environ["IMAGINEER_FUZZ_LORA"], "rb") as lora:
        schemathesis.openapi.media_type("application/octet-stream", st.just(lora.read()))


@schemathesis.hook
def before_call(context, case, kwargs):
    """A model upload with a file registers a LoRA: the one file this run sends (above) is
    a LoRA, and a LoRA sent as `kind: base`, `vae` or `upscaler` is rightly refused (400:
    the file is the request, and no schema can say what a file holds). Before the call,
    where every phase's body passes (a map_body hook missed some in the stateful phase).
    Only a valid kind is replaced, so that a body the schema forbids stays forbidden."""
    body = case.body
    if (case.operation.method.upper(), case.operation.path) == ("POST", "/api/models/") and (
            isinstance(body, dict) and "file" in body
            and body.get("kind") in ("base", "vae", "upscaler")):
        case.body = {**body, "kind": "lora"}


@schemathesis.hook
def filter_case(context, case):
    """A form cannot say null or an empty list: schemathesis sends a field whose value is
    None or [] as no part at all, so the request sent is another than the one it judges (a
    negative case, `album: []` on an upload, becomes a valid one without `album`). Such
    cases are left out (no form field is nullable: a valid form never holds them); JSON
    says both, and keeps them."""
    return not (case.media_type == "multipart/form-data" and isinstance(case.body, dict)
                and any(value is None or value == [] for value in case.body.values()))
