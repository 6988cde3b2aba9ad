"""Letters in MNIST's format: a kind of symbol no zoo flow was trained on, made here.

The glyphs come from the 21 text fonts that matplotlib ships (DejaVu Sans, Sans Mono and Serif,
STIX General, each regular, bold, italic and bold italic; Computer Modern roman, sans, italic,
typewriter and bold), so nothing is downloaded. Each image is one letter in a random font,
rotated (+-15 degrees), sheared (+-0.3), stretched (0.8-1.2 per axis) and, one time in two,
thickened, then normalized as MNIST's digits were (LeCun et al., 1998): fitted into a 20x20
box with its aspect ratio kept, anti-aliased, and centred by its centre of mass in 28x28, white
on black, 256 levels.
"""

import os

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Ten capitals that no digit is drawn as (no I, O, S, Z).
LETTERS = "ABCDEFGHKM"
_FONTS = (
    "DejaVuSans.ttf DejaVuSans-Bold.ttf DejaVuSans-Oblique.ttf DejaVuSans-BoldOblique.ttf "
    "DejaVuSansMono.ttf DejaVuSansMono-Bold.ttf DejaVuSansMono-Oblique.ttf "
    "DejaVuSansMono-BoldOblique.ttf DejaVuSerif.ttf DejaVuSerif-Bold.ttf DejaVuSerif-Italic.ttf "
    "DejaVuSerif-BoldItalic.ttf STIXGeneral.ttf STIXGeneralBol.ttf STIXGeneralItalic.ttf "
    "STIXGeneralBolIta.ttf cmr10.ttf cmss10.ttf cmti10.ttf cmtt10.ttf cmb10.ttf"
).split()
_CANVAS = 96


def _fonts():
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    return [ImageFont.truetype(os.path.join(folder, name), 56) for name in _FONTS]


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


def letters(per_class=1000, seed=0):
    """``(images, labels)``: ``per_class`` images of each of `LETTERS`, uint8 ``[N, 28, 28,
    1]`` and int64 ``[N]`` (label ``i`` is ``LETTERS[i]``), the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    fonts = _fonts()
    images, labels = [], []
    for label, letter in enumerate(LETTERS):
        for _ in range(per_class):
            font = fonts[rng.integers(len(fonts))]
            images.append(_mnist_normalized(_glyph(letter, font, rng)))
            labels.append(label)
    return np.stack(images)[..., None], np.array(labels, np.int64)
