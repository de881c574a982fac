"""Image files: every kind Pillow reads is converted, every bad file gets one sentence, PNG 8/16-bit out."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine_server.core.errors import InputError
from engine_server.core.images import fit_size, load_image, resize, save_image, save_png
from tests.support.png16 import read_png16

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)


def png_with_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_rgb_png_loads_exactly(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "a.png")
    rgb, alpha = load_image(tmp_path / "a.png")
    assert rgb.dtype == np.float32 and alpha is None
    np.testing.assert_array_equal(rgb, RGB.astype(np.float32))


def test_alpha_is_kept_aside(tmp_path):
    a = RNG.integers(0, 256, (12, 16), dtype=np.uint8)
    Image.fromarray(np.dstack([RGB, a]), "RGBA").save(tmp_path / "a.png")
    rgb, alpha = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(rgb, RGB)
    np.testing.assert_array_equal(alpha, a)


def test_gray_and_gray_alpha(tmp_path):
    gray = RNG.integers(0, 256, (12, 16), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    Image.fromarray(np.dstack([gray, gray // 2]), "LA").save(tmp_path / "la.png")
    rgb, alpha = load_image(tmp_path / "g.png")
    assert rgb.shape == (12, 16, 3) and alpha is None
    np.testing.assert_array_equal(rgb[..., 1], gray)
    rgb, alpha = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(rgb[..., 0], gray)
    np.testing.assert_array_equal(alpha, gray // 2)


def test_sixteen_bit_gray_is_scaled_to_0_255(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")           # mode I;16
    rgb, _ = load_image(tmp_path / "g16.png")
    np.testing.assert_allclose(rgb[0, :, 0], [0, 100, 255], atol=1e-3)


def test_palette_with_transparency_and_cmyk_and_bilevel(tmp_path):
    palette = Image.fromarray(RGB).convert("P", palette=Image.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    rgb, alpha = load_image(tmp_path / "p.png")
    assert rgb.shape == (12, 16, 3) and alpha is not None and set(np.unique(alpha)) <= {0.0, 255.0}
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg")
    rgb, alpha = load_image(tmp_path / "c.jpg")
    assert rgb.shape == (12, 16, 3) and alpha is None
    assert np.abs(rgb - RGB).mean() < 20          # JPEG: close, not exact
    Image.fromarray(RGB[..., 0] > 128).save(tmp_path / "b.png")
    rgb, _ = load_image(tmp_path / "b.png")
    assert set(np.unique(rgb)) <= {0.0, 255.0}


def test_float_tiff(tmp_path):
    values = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    rgb, _ = load_image(tmp_path / "f.tif")
    np.testing.assert_allclose(rgb[..., 2], values * 255, atol=1e-3)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(RGB)
    exif = image.getexif()
    exif[0x0112] = 6                               # rotate 90° clockwise on display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    rgb, _ = load_image(tmp_path / "r.jpg")
    assert rgb.shape == (16, 12, 3)


def _truncated_png(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    return tmp_path / "t.png", "truncated or damaged"


def _truncated_jpeg(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path / "t.jpg", "truncated or damaged"


def _header_only(width, height, expected):
    def make(tmp_path):
        (tmp_path / "h.png").write_bytes(png_with_header(width, height))
        return tmp_path / "h.png", expected
    return make


def _text(tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    return tmp_path / "notes.png", "is not an image"


BAD = {
    "missing": lambda tmp_path: (tmp_path / "nope.png", "does not exist"),
    "folder": lambda tmp_path: (tmp_path, "is not a file"),
    "text": _text,
    "truncated_png": _truncated_png,
    "truncated_jpeg": _truncated_jpeg,
    "zero_width": _header_only(0, 10, "has no pixels"),
    "zero_height": _header_only(10, 0, "has no pixels"),
    "bomb": _header_only(40000, 40000, "decompression bomb"),
    "too_wide": _header_only(70000, 1, "decompression bomb"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_image_files_get_one_sentence(tmp_path, kind):
    path, expected = BAD[kind](tmp_path)
    with pytest.raises(InputError) as caught:
        load_image(path, "style image")
    message = str(caught.value)
    assert expected in message and str(path) in message and message.startswith("style image")
    assert "\n" not in message


def test_save_png_8_and_16_bit_round_trip(tmp_path):
    rgb = RNG.uniform(0, 255, (5, 7, 3)).astype(np.float32)
    alpha = RNG.uniform(0, 255, (5, 7)).astype(np.float32)
    save_png(tmp_path / "o8.png", rgb, alpha, bits=8)
    back = np.asarray(Image.open(tmp_path / "o8.png"))
    assert back.shape == (5, 7, 4)
    np.testing.assert_array_equal(back[..., :3], np.round(rgb).astype(np.uint8))
    save_png(str(tmp_path / "o16.png"), rgb, None, bits=16)
    back16 = read_png16(str(tmp_path / "o16.png"))
    assert back16.dtype == np.uint16 and back16.shape == (5, 7, 3)
    np.testing.assert_allclose(back16 / 65535.0 * 255.0, rgb, atol=0.01)
    with Image.open(tmp_path / "o16.png") as image:     # a valid PNG for other readers too
        image.load()
        assert image.size == (7, 5)


def test_save_image_formats(tmp_path):
    rgb = RNG.uniform(0, 255, (5, 7, 3)).astype(np.float32)
    save_image(str(tmp_path / "o.jpg"), rgb, np.zeros((5, 7)))      # JPEG drops the alpha
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"
    with pytest.raises(InputError, match="cannot write"):
        save_image(str(tmp_path / "o.xyz"), rgb)


def test_resize_and_fit_size():
    assert fit_size((300, 400), 200) == (150, 200)
    assert fit_size((1, 1000), 100) == (1, 100)
    flat = np.full((20, 30, 3), 77.0, np.float32)
    out = resize(flat, (10, 15))
    assert out.shape == (10, 15, 3)
    np.testing.assert_allclose(out, 77.0, atol=1e-3)
