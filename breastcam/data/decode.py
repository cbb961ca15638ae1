"""Reading image files into uint8 RGB arrays, the same way in NumPy and inside ``tf.data``.

Two decoders share the work. TensorFlow's (``tf.io``) handles 8-bit PNG, JPEG, GIF and
uncompressed 24/32-bit BMP: it runs inside the graph, so the pipeline never takes the GIL for
them. OpenCV handles the rest: TIFF, PGM/PPM/PBM, 16-bit PNG and palette BMP. Which decoder
a file gets is decided from its bytes, not its extension, by the same rule in
:func:`read_image` and :func:`decode_tf`, so both return identical pixels for every file.

Conventions, whatever the source:

- 3 channels, RGB order. Grayscale is copied into the three channels; an alpha channel is
  dropped (not composited), so transparent pixels keep their stored colour.
- 16-bit (and float) images are scaled to 8 bits **by the image's own maximum**:
  ``round(x * 255 / x.max())``. Scientific images often keep 10-12-bit sensor values in a
  16-bit container; dividing by 65535 would leave such mammograms nearly black. The price: the
  absolute intensity scale is lost between images (each image's brightest pixel becomes 255).
  An all-zero image stays zero.
- A truncated PNG (no ``IEND`` chunk at its end), JPEG (no ``EOI`` marker), GIF (no trailer) or
  BMP (shorter than its header says) is an error, never a partly grey image.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from breastcam.errors import DataError

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm",
)
"""Lower-case file suffixes, with the dot, that :func:`read_image` accepts
(compare with ``Path(p).suffix.lower()``)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
_GIF_TRAILER = b"\x3b"
# End markers are looked for in the last bytes only: some writers pad files after them, and a
# truncated JPEG cannot hold FF D9 in its entropy-coded data (FF is always stuffed with 00).
_TAIL_BYTES = 1024
_GIF_TAIL_BYTES = 16
_HEAD_BYTES = 64  # covers the PNG IHDR bit depth (byte 24) and the BMP header fields (2-33)
MIN_IMAGE_PIXELS = 4
"""Images of fewer pixels are refused: resizing a 1x1 or 1x3 image to the model's input would
invent the whole picture (such files are placeholders or export errors, not data)."""


MAX_IMAGE_PIXELS = 100_000_000
"""Images of more pixels are refused before decoding (a 2 KB PNG can declare 20,000 x 20,000 and
decode to 1.2 GB: a decompression bomb, as Pillow's ``MAX_IMAGE_PIXELS`` guards against). The
largest public images breastcam reads (Mini-DDSM, CDD-CESM) are about 25 M pixels. A run config
raises it with ``data.max_image_pixels``; :func:`set_max_image_pixels` does it for a process."""


def set_max_image_pixels(limit: int) -> None:
    global MAX_IMAGE_PIXELS
    if int(limit) < MIN_IMAGE_PIXELS:
        raise DataError(f"data.max_image_pixels must be at least {MIN_IMAGE_PIXELS}, got {limit!r}")
    MAX_IMAGE_PIXELS = int(limit)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header alone (Pillow reads it lazily), or None if unknown.

    Pillow itself refuses headers over twice its own limit; that refusal is passed on as a
    size just over ours (the file is far over it either way)."""
    import io
    import warnings

    from PIL import Image

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return tuple(int(v) for v in np.frombuffer(data[16:24], ">u4"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings on odd EXIF / its own bomb warning
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Image.DecompressionBombError as err:  # "Image size (N pixels) exceeds limit ..."
        import re

        found = re.search(r"\((\d+) pixels\)", str(err))
        return (int(found.group(1)) if found else MAX_IMAGE_PIXELS + 1, 1)
    except Exception:  # noqa: BLE001 - not Pillow's format: the decoders below judge the file
        return None


def too_large(width: int, height: int) -> bool:
    return int(width) * int(height) > MAX_IMAGE_PIXELS


def too_large_reason(width: int, height: int) -> str:
    size = f"{width}x{height} = " if height > 1 else ""
    return (f"the image declares {size}{int(width) * int(height):,} pixels, over the limit of "
            f"{MAX_IMAGE_PIXELS:,} (a decompression bomb?); if it is genuine, raise data.max_image_pixels "
            "in the run config")


def too_small(height: int, width: int) -> bool:
    return int(height) * int(width) < MIN_IMAGE_PIXELS


def too_small_reason(height: int, width: int) -> str:
    return (f"the image is {width}x{height} pixels, fewer than the minimum {MIN_IMAGE_PIXELS} "
            "pixels: not a usable image")


class BadImageError(DataError):
    """A file that cannot be read as an image. ``path`` is the file, ``reason`` what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"cannot read image {self.path}: {reason}. Replace or re-copy the file, or drop it "
            "from the manifest; `breastcam validate` lists every unreadable file, and "
            "make_dataset(..., on_bad_image='skip') leaves such files out."
        )


# --- the decoding rule, on bytes ----------------------------------------------------------


def _format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif`` or ``bmp`` from the magic bytes; ``None`` for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(_JPEG_SOI):
        return "jpeg"
    if data[:6] in _GIF_SIGNATURES:
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def _truncation(data: bytes, fmt: str | None) -> str | None:
    """Why a file of format ``fmt`` looks cut short, or ``None`` when its end is intact."""
    if fmt == "png" and b"IEND" not in data[-_TAIL_BYTES:]:
        return "the PNG has no IEND chunk at its end: the file is truncated"
    if fmt == "jpeg" and _JPEG_EOI not in data[-_TAIL_BYTES:]:
        return "the JPEG has no end-of-image marker (FF D9): the file is truncated"
    if fmt == "gif" and _GIF_TRAILER not in data[-_GIF_TAIL_BYTES:]:
        return "the GIF has no trailer byte (3B) at its end: the file is truncated"
    if fmt == "bmp" and len(data) >= 6:
        declared = struct.unpack_from("<I", data, 2)[0]
        if len(data) < declared:
            return f"the BMP header declares {declared} bytes but the file has {len(data)}"
    return None


def _tf_decodable(data: bytes, fmt: str | None) -> bool:
    """Whether TensorFlow decodes this file exactly as breastcam wants (see the module doc)."""
    if fmt == "png":
        return len(data) > 24 and data[24] in (1, 2, 4, 8)  # IHDR bit depth; 16 -> OpenCV
    if fmt == "bmp":
        if len(data) < 34:
            return False
        bits, compression = struct.unpack_from("<HI", data, 28)
        return bits in (24, 32) and compression == 0  # TF reads palette BMPs as grey levels
    return fmt in ("jpeg", "gif")


# --- NumPy -------------------------------------------------------------------------------


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image at ``path`` as a uint8 array of shape (H, W, 3), RGB.

    Raises :class:`BadImageError` (naming the file and the reason) for a missing, empty,
    truncated, corrupt or non-image file, or one whose extension is not in
    :data:`SUPPORTED_EXTENSIONS`.
    """
    path = Path(path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise BadImageError(
            path,
            f"unsupported extension {path.suffix!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadImageError(path, "the file does not exist") from None
    except OSError as err:
        raise BadImageError(path, f"the file cannot be read ({err.strerror or err})") from None
    if not data:
        raise BadImageError(path, "the file is empty (0 bytes)")

    fmt = _format(data)
    reason = _truncation(data, fmt)
    if reason:
        raise BadImageError(path, reason)
    declared = declared_size(data)
    if declared and too_large(*declared):
        raise BadImageError(path, too_large_reason(*declared))
    if _tf_decodable(data, fmt):
        try:
            image = _decode_with_tf(tf.constant(data), fmt == "jpeg").numpy()
        except tf.errors.InvalidArgumentError as err:
            reason = f"corrupt {fmt.upper()} data ({err.message.strip()})"
            raise BadImageError(path, reason) from None
    else:
        image = _decode_opencv(data, path)
    if too_small(*image.shape[:2]):
        raise BadImageError(path, too_small_reason(*image.shape[:2]))
    return image


def _decode_opencv(data: bytes, path: Path) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise BadImageError(path, "the contents are not a readable image (corrupt or not an image)")
    image = _to_uint8(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 2:  # grey + alpha
        return np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB, alpha dropped


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a deeper image to uint8 by its own maximum (module doc: why not the dtype's)."""
    if image.dtype == np.uint8:
        return image
    values = np.clip(image.astype(np.float64), 0.0, None)
    peak = values.max()
    if peak <= 0:
        return np.zeros(image.shape, np.uint8)
    return np.round(values * (255.0 / peak)).astype(np.uint8)


# --- TensorFlow --------------------------------------------------------------------------


def _contains(text: tf.Tensor, needle: bytes) -> tf.Tensor:
    """Whether the scalar string ``text`` holds the bytes ``needle`` (a byte-wise split)."""
    # The raw op: tf.strings.split wraps it in a RaggedTensor, ten times the graph ops.
    pieces = tf.raw_ops.StringSplitV2(input=tf.reshape(text, [1]), sep=needle, maxsplit=1)
    return tf.size(pieces.values) > 1


def _decode_with_tf(contents: tf.Tensor, is_jpeg) -> tf.Tensor:
    """8-bit PNG, GIF, BMP with ``decode_image``; JPEG with the accurate integer DCT.

    TensorFlow's default JPEG DCT is the fast one, about one grey level off on average; the
    accurate one decodes exactly as OpenCV and PIL do.
    """
    return tf.cond(
        is_jpeg,
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False),
    )


def _tf_route(contents: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Graph twin of ``_format`` + ``_truncation`` + ``_tf_decodable``.

    Returns (whether tf.io decodes the file, whether it is a JPEG).
    """
    # String ops only (about 100 graph ops): byte arrays and slices cost five times more to
    # trace, paid again by every make_dataset call.
    size = tf.strings.length(contents)
    head = tf.strings.join([tf.strings.substr(contents, 0, _HEAD_BYTES), b"\0" * _HEAD_BYTES])
    tail = tf.strings.substr(contents, tf.maximum(size - _TAIL_BYTES, 0), _TAIL_BYTES)
    gif_tail = tf.strings.substr(contents, tf.maximum(size - _GIF_TAIL_BYTES, 0), _GIF_TAIL_BYTES)

    def at(offset: int, length: int) -> tf.Tensor:
        return tf.strings.substr(head, offset, length)

    def one_of(offset: int, values: list[bytes]) -> tf.Tensor:
        return tf.reduce_any(tf.equal(at(offset, len(values[0])), values))

    png = (
        (at(0, 8) == _PNG_SIGNATURE)
        & one_of(24, [b"\x01", b"\x02", b"\x04", b"\x08"])  # IHDR bit depth
        & _contains(tail, b"IEND")
    )
    jpeg = (at(0, 3) == _JPEG_SOI) & _contains(tail, _JPEG_EOI)
    gif = one_of(0, list(_GIF_SIGNATURES)) & _contains(gif_tail, _GIF_TRAILER)
    declared_size = tf.io.decode_raw(at(2, 4), tf.int32, little_endian=True)[0]
    bmp = (
        (at(0, 2) == b"BM")
        & one_of(28, [b"\x18\x00", b"\x20\x00"])  # 24 or 32 bits per pixel
        & (at(30, 4) == b"\0\0\0\0")  # no compression
        & (size >= declared_size)
    )
    return png | jpeg | gif | bmp, jpeg


def _read_image_np(path) -> np.ndarray:
    # Graph mode passes bytes, eager mode a 0-d array holding them.
    path = path.item() if isinstance(path, np.ndarray) else path
    return read_image(os.fsdecode(path))


@tf.autograph.experimental.do_not_convert  # no Python control flow on tensors; traces faster
def decode_tf(path: tf.Tensor) -> tf.Tensor:
    """Graph version of :func:`read_image`: a scalar string path -> uint8 [H, W, 3] RGB.

    8-bit PNG, JPEG, GIF and 24/32-bit BMP are decoded by ``tf.io``; every other file
    (TIFF, PNM, 16-bit PNG, and any file that looks truncated or is not an image at all) goes
    through :func:`read_image` inside ``tf.numpy_function``, so a bad file fails with a
    :class:`BadImageError` whose text names it. Limitation: a file with intact header and end
    marker but corrupt data inside fails with TensorFlow's own message, which does not name the
    file; ``breastcam validate`` (a full decode of every file) finds those.
    """
    contents = tf.io.read_file(path)
    use_tf, is_jpeg = _tf_route(contents)
    image = tf.cond(
        use_tf,
        lambda: _decode_with_tf(contents, is_jpeg),
        lambda: tf.numpy_function(_read_image_np, [path], tf.uint8, stateful=False),
    )
    image.set_shape([None, None, 3])
    return image


# --- one route for a whole dataset ---------------------------------------------------------

ROUTES = ("png", "jpeg", "general")
"""How :func:`decode_as` decodes a file: ``png`` / ``jpeg`` with ``tf.io`` alone (no branch in
the graph), ``general`` with :func:`decode_tf` (routing on the bytes of each file)."""


def sniff_route(path: str | os.PathLike) -> str:
    """The route of one file from its first bytes: ``png`` for an 8-bit (or less) PNG, ``jpeg``
    for a JPEG, ``general`` for anything else (TIFF, PNM, 16-bit PNG, GIF, BMP, unreadable)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return "general"
    fmt = _format(head)
    if fmt in ("png", "jpeg") and _tf_decodable(head, fmt):
        return fmt
    return "general"


def _truncated_error(path: tf.Tensor, ok: tf.Tensor, reason: str) -> tf.Operation:
    """An ``Assert`` that fails naming the file (an op, not a branch: no function call)."""
    message = tf.strings.join([
        "cannot read image ", path, f": {reason}. Replace or re-copy the file, or drop it from "
        "the manifest; `breastcam validate` lists every unreadable file (the pre-flight check "
        "of train/evaluate/reproduce reports them all before the first step).",
    ])
    return tf.debugging.Assert(ok, [message])


@tf.autograph.experimental.do_not_convert
def decode_as(path: tf.Tensor, route: str) -> tf.Tensor:
    """:func:`decode_tf` for a dataset whose files all share ``route`` (see :func:`sniff_route`).

    ``png``/``jpeg``: read, check the end marker (a truncated file fails with an error naming
    it), decode with ``tf.io`` - the same decoder and pixels as :func:`decode_tf` picks for such
    a file, without its per-file branch (a ``tf.cond`` with a Python decoder inside; a branch
    is a function call per image). ``general``: :func:`decode_tf`.
    """
    if route not in ROUTES:
        raise DataError(f"route must be one of {ROUTES}, got {route!r}")
    if route == "general":
        return decode_tf(path)
    contents = tf.io.read_file(path)
    tail = tf.strings.substr(contents, tf.maximum(tf.strings.length(contents) - _TAIL_BYTES, 0),
                             _TAIL_BYTES)
    if route == "png":
        check = _truncated_error(path, _contains(tail, b"IEND"),
                                 "the PNG has no IEND chunk at its end: the file is truncated")
        with tf.control_dependencies([check]):
            image = tf.io.decode_png(contents, channels=3)
    else:
        check = _truncated_error(path, _contains(tail, _JPEG_EOI),
                                 "the JPEG has no end-of-image marker (FF D9): the file is truncated")
        with tf.control_dependencies([check]):
            image = tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")
    image.set_shape([None, None, 3])
    return image
