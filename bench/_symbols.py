"""Symbols in MNIST's format, made here: letters no zoo flow was trained on, and a broad set of
other glyphs to train a flow for them.

`letters` draws ten capitals (`LETTERS`); `draw` any symbols, such as the 75 kinds of `GLYPHS`
(digits, capitals and lower-case letters that look like none of `LETTERS`, Greek letters,
signs). ``python bench/_symbols.py --write glyphs.npz`` writes those in Keras' ``mnist.npz``
layout, the training set of the preset ``realnvp_class_prior_glyphs``, which has so seen the
fonts and the distortions but never a letter of `LETTERS`; ``--letters`` writes the letters.

The glyphs come from the 21 text fonts that matplotlib ships (DejaVu Sans, Sans Mono and Serif,
STIX General, each regular, bold, italic and bold italic; Computer Modern roman, sans, italic,
typewriter and bold), so nothing is downloaded. Each image is one letter in a random font,
rotated (+-15 degrees), sheared (+-0.3), stretched (0.8-1.2 per axis) and, one time in two,
thickened, then normalized as MNIST's digits were (LeCun et al., 1998): fitted into a 20x20
box with its aspect ratio kept, anti-aliased, and centred by its centre of mass in 28x28, white
on black, 256 levels.
"""

import argparse
import functools
import os

import matplotlib
import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Ten capitals that no digit is drawn as (no I, O, S, Z).
LETTERS = "ABCDEFGHKM"
# No capital or lower-case form of LETTERS, none of the Greek letters drawn alike (Alpha, Beta,
# Epsilon, Eta, Kappa, Mu; kappa, beta), and no capital that a digit is drawn as.
GLYPHS = "".join(
    [
        "0123456789",
        "JLNPQRTUVWXY",
        "ijnpqrtuy",
        "ΓΔΘΛΞΠΣΦΨΩ",
        "αγδεζηθλμξπρστφχψω",
        "+=%&@#?!$<>§¶±÷∞",
    ]
)
_FONTS = (
    "DejaVuSans.ttf DejaVuSans-Bold.ttf DejaVuSans-Oblique.ttf DejaVuSans-BoldOblique.ttf "
    "DejaVuSansMono.ttf DejaVuSansMono-Bold.ttf DejaVuSansMono-Oblique.ttf "
    "DejaVuSansMono-BoldOblique.ttf DejaVuSerif.ttf DejaVuSerif-Bold.ttf DejaVuSerif-Italic.ttf "
    "DejaVuSerif-BoldItalic.ttf STIXGeneral.ttf STIXGeneralBol.ttf STIXGeneralItalic.ttf "
    "STIXGeneralBolIta.ttf cmr10.ttf cmss10.ttf cmti10.ttf cmtt10.ttf cmb10.ttf"
).split()
_CANVAS = 96


@functools.cache
def _fonts():
    """``[(font, the characters it draws)]`` for `_FONTS`."""
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    found = []
    for name in _FONTS:
        path = os.path.join(folder, name)
        drawn = {chr(c) for c in TTFont(path).getBestCmap()}
        if name.startswith("cm"):  # BaKoMa's Computer Modern puts TeX's own glyphs at signs
            drawn = {c for c in drawn if c.isalnum()}
        found.append((ImageFont.truetype(path, 56), drawn))
    return found


def _glyph(letter, font, rng):
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(image).text((_CANVAS / 2, _CANVAS / 2), letter, fill=255, font=font, anchor="mm")
    angle = np.deg2rad(rng.uniform(-15, 15))
    shear = rng.uniform(-0.3, 0.3)
    sx, sy = rng.uniform(0.8, 1.2, size=2)
    # PIL's affine maps output pixels to input ones: the inverse of scale . shear . rotation.
    forward = (
        np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        @ np.array([[1.0, shear], [0.0, 1.0]])
        @ np.diag([sx, sy])
    )
    inverse = np.linalg.inv(forward)
    centre = np.array([_CANVAS / 2, _CANVAS / 2])
    offset = centre - inverse @ centre
    coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
    image = image.transform(image.size, Image.AFFINE, coefficients, Image.BILINEAR)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.MaxFilter(3))
    return image


def _mnist_normalized(image):
    """MNIST's normalization: the glyph's box fitted in 20x20, centred by mass in 28x28."""
    box = image.getbbox()
    glyph = image.crop(box)
    w, h = glyph.size
    scale = 20.0 / max(w, h)
    glyph = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    pixels = np.asarray(glyph, np.float64)
    rows, cols = np.indices(pixels.shape)
    total = pixels.sum()
    cy, cx = (rows * pixels).sum() / total, (cols * pixels).sum() / total
    out = np.zeros((28, 28), np.float64)
    top, left = round(14 - cy), round(14 - cx)
    top = min(max(top, 0), 28 - pixels.shape[0])
    left = min(max(left, 0), 28 - pixels.shape[1])
    out[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def draw(symbols, per_class, seed):
    """``(images, labels)``: ``per_class`` images of each of ``symbols``, each in a random font
    that has it, uint8 ``[N, 28, 28, 1]`` and int64 ``[N]`` (label ``i`` is ``symbols[i]``), the
    same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, symbol in enumerate(symbols):
        fonts = [font for font, drawn in _fonts() if symbol in drawn]
        for _ in range(per_class):
            font = fonts[rng.integers(len(fonts))]
            images.append(_mnist_normalized(_glyph(symbol, font, rng)))
            labels.append(label)
    return np.stack(images)[..., None], np.array(labels, np.int64)


def letters(per_class=1000, seed=0):
    """`draw` of `LETTERS`: the held-out letters."""
    return draw(LETTERS, per_class, seed)


def write(path, symbols=GLYPHS, train_per_class=800, test_per_class=100):
    """Writes ``symbols`` as ``mnist.npz`` arrays (``x_train``, ``y_train``, ``x_test``,
    ``y_test``; images ``[N, 28, 28]``), the two splits from different seeds, kinds mixed."""
    arrays = {}
    for split, per_class, seed in (("train", train_per_class, 1), ("test", test_per_class, 2)):
        x, y = draw(symbols, per_class, seed)
        order = np.random.default_rng(seed).permutation(len(y))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[order, ..., 0], y[order]
    partial = f"{path}.partial.npz"
    np.savez_compressed(partial, **arrays)
    os.replace(partial, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Writes the glyphs (or the letters) as .npz.")
    parser.add_argument("--write", required=True, help="the .npz file to write")
    parser.add_argument("--letters", action="store_true", help="LETTERS instead of GLYPHS")
    args = parser.parse_args()
    write(args.write, LETTERS if args.letters else GLYPHS)
