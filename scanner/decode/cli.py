"""``passqr-scanner decode [--json] [--decoder NAME] IMAGE...``: what the camera would read.

With ``--json``, one line per image on standard output, a contract for other tools::

    {"file": "a.png", "codes": [{"text": "...", "format": "QRCode", "backend": "zxing"}],
     "ms": 0.21}

``ms`` is the decoding time alone (not reading the file). An image that cannot be
read gets one line on standard error; the others are still decoded, and the exit
status is 1 at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scanner import exitcodes
from scanner.decode import DECODER_NAMES
from scanner.payload import printable

if TYPE_CHECKING:
    from scanner.decode import Gray

PROG = "passqr-scanner decode"
EXIT_UNAVAILABLE = exitcodes.UNAVAILABLE  # the chosen backend's library is missing


class UnreadableImage(Exception):
    """The file is missing, unreadable, or not an image OpenCV can decode."""


def read_gray(path: Path) -> Gray:
    """The image at ``path`` as 8-bit grayscale.

    Read through Python (clear OS errors, any file name) and decoded by OpenCV.

    Raises:
        UnreadableImage: with the reason.
    """
    import cv2
    import numpy as np

    try:
        data = path.read_bytes()
    except OSError as err:
        raise UnreadableImage(err.strerror or type(err).__name__) from err
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise UnreadableImage("not an image OpenCV can read")
    return gray.astype(np.uint8, copy=False)


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode every image named; 0 if all could be read, 1 otherwise."""
    from scanner.decode import DecoderUnavailable, build_decoder

    try:
        decoder = build_decoder(args.decoder)
    except DecoderUnavailable as err:
        sys.stderr.write(f"{PROG}: {err}\n")
        return EXIT_UNAVAILABLE
    status = 0
    for name in args.images:
        path = Path(name)
        try:
            gray = read_gray(path)
        except UnreadableImage as err:
            sys.stderr.write(f"{PROG}: {name}: cannot read the image: {err}\n")
            sys.stderr.flush()
            status = 1
            continue
        start = time.perf_counter()
        codes = decoder.decode(gray)
        ms = (time.perf_counter() - start) * 1000
        if args.json:
            line = json.dumps(
                {"file": name, "codes": [c.to_json() for c in codes], "ms": round(ms, 3)},
                ensure_ascii=False,
            )
        elif codes:
            shown = "; ".join(f"{printable(c.text, 200)} ({c.format}, {c.backend})" for c in codes)
            line = f"{name}: {shown} [{ms:.1f} ms]"
        else:
            line = f"{name}: no code found [{ms:.1f} ms]"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return status


def add_decode_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``decode`` (with ``func=`` set) on a CLI's subcommands."""
    decode = subparsers.add_parser(
        "decode",
        help="read the QR codes in image files, as the camera would",
        description="Decode QR codes in image files with the camera's decoders.",
    )
    decode.add_argument(
        "--json",
        action="store_true",
        help='one JSON line per image: {"file", "codes": [{"text", "format", "backend"}], "ms"}',
    )
    decode.add_argument(
        "--decoder",
        choices=DECODER_NAMES,
        default="auto",
        help="auto (the measured best chain, default), zxing, zbar or opencv",
    )
    decode.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, WebP, ... files")
    decode.set_defaults(func=cmd_decode)
