"""Real image bytes for tests: uploads are typed by their content, so a photo must be one."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825


def jpeg(label: str = "photo", *, size: tuple[int, int] = (32, 24), gps: bool = False) -> bytes:
    """A small JPEG whose pixels depend on `label` (different labels, different bytes); with
    `gps`, its EXIF carries a camera model and a GPS position, as a phone's photo does."""
    seed = sum(label.encode()) % 256
    image = Image.new("RGB", size, (seed, 255 - seed, (seed * 7) % 256))
    exif = Image.Exif()
    exif[0x0110] = "Test Camera"  # Model
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (31.0, 13.0, 48.0), 3: "E", 4: (121.0, 28.0, 12.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()
