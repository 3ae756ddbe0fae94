"""``passes qr``: printable codes that the project's own decoder reads back.

PNGs are read with ``cv2.imread`` in grayscale and decoded by :mod:`scanner.decode`;
SVGs are parsed as XML, their text checked, and their path rasterised and decoded.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scanner.api import PassQRClient
from scanner.decode import build_decoder
from scanner.manage.qr import QrError, QrFormat, ascii_text, png_bytes, svg_document, write_qr
from scanner.models import Page, PassInfo
from tests.conftest import LocalServer
from tests.manage.conftest import RunCli

SVG = "{http://www.w3.org/2000/svg}"


def decode_png(path: Path) -> list[str]:
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, path
    return [code.text for code in build_decoder("auto").decode(gray.astype(np.uint8))]


def svg_texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def rasterise(root: ET.Element) -> np.ndarray:
    """Draw the SVG's dark-module path (``M x y h w v s h -w z`` runs) on white."""
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    image = np.full((height, width), 255, np.uint8)
    (path,) = root.iter(f"{SVG}path")
    for x, y, w, h in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+z", path.attrib["d"]):
        image[int(y) : int(y) + int(h), int(x) : int(x) + int(w)] = 0
    return image


@pytest.mark.parametrize(
    "name",
    ["Ada Lovelace", "Zoë Müller-Łukasiewicz", "王小明", "[bold]Eve[/] <b>&amp;", None],
)
def test_png_decodes_back(tmp_path: Path, name: str | None) -> None:
    info = PassInfo(code="PASS-AB12CD34", holder_name=name, holder_email="eve@example.com")
    path, warning = write_qr(info, tmp_path, "png")
    assert path == tmp_path / "PASS-AB12CD34.png"
    assert decode_png(path) == ["PASS-AB12CD34"]
    if name == "王小明":
        assert warning is not None and "--format svg" in warning
    elif name and not name.isascii():
        assert warning is not None and "Zoe Muller-Lukasiewicz" in warning
    else:
        assert warning is None


def test_png_has_the_name_under_the_code(tmp_path: Path) -> None:
    with_name, _ = png_bytes(PassInfo(code="PASS-AB12CD34", holder_name="Ada Lovelace"))
    without, _ = png_bytes(PassInfo(code="PASS-AB12CD34"))
    a = cv2.imdecode(np.frombuffer(with_name, np.uint8), cv2.IMREAD_GRAYSCALE)
    b = cv2.imdecode(np.frombuffer(without, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert a is not None and b is not None
    assert a.shape[1] == b.shape[1] and a.shape[0] > b.shape[0]  # one more line of text
    width = a.shape[1]
    assert (a[width:, :] < 128).any()  # ink under the symbol


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ('<script>alert("x")</script> & Co', '<script>alert("x")</script> & Co'),
        ("Zoë \x1b[31mred\x00", "Zoë [31mred"),
        ("王小明 🎟", "王小明 🎟"),
    ],
)
def test_svg_is_well_formed_with_the_real_text(tmp_path: Path, name: str, shown: str) -> None:
    info = PassInfo(code="PASS-AB12CD34", holder_name=name)
    path, warning = write_qr(info, tmp_path, "svg")
    assert warning is None
    assert path.name == "PASS-AB12CD34.svg"
    root = ET.fromstring(path.read_bytes())
    *name_lines, code = svg_texts(root)  # a long name is on two lines
    assert " ".join(name_lines) == shown
    assert code == "PASS-AB12CD34"
    assert "<script>" not in path.read_text()
    image = rasterise(root)
    assert [c.text for c in build_decoder("auto").decode(image)] == ["PASS-AB12CD34"]


def test_a_long_name_goes_on_two_lines() -> None:
    name = "Maria Dolores Fernández de la Concepción y Montenegro-Villalobos"
    root = ET.fromstring(svg_document(PassInfo(code="PASS-AB12CD34", holder_name=name)))
    first, second, code = svg_texts(root)
    assert f"{first} {second}" == name and code == "PASS-AB12CD34"


def test_ascii_text() -> None:
    assert ascii_text("Zoë Łódź-Straße") == "Zoe Lodz-Strasse"
    assert ascii_text("Ærøskøbing  Œuvre") == "AEroskobing OEuvre"
    assert ascii_text("王小明") == ""
    assert ascii_text("Jo 王 Lee") == "Jo ? Lee"


@pytest.mark.parametrize(
    "code", ["../../etc/passwd", "PASS-abc", "", None, "PASS-ABCD1234\n", "PASS-ABCD1234\r\n"]
)
def test_only_pass_codes_become_file_names(tmp_path: Path, code: str | None) -> None:
    with pytest.raises(QrError):
        write_qr(PassInfo(code=code, holder_name="x"), tmp_path / "out", "png")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_qr_command(tmp_path: Path, cli: RunCli, local_server: LocalServer) -> None:
    codes = local_server.seed()
    out = tmp_path / "print"
    ran = cli(
        "passes",
        "qr",
        codes["valid"],
        codes["season"].lower(),
        f"https://www.passqr.com/p/{codes['used']}",
        "PASS-ZZZZ0000",
        "junk",
        "--out",
        str(out),
    )
    assert ran.status == 1  # two could not be made
    assert "PASS-ZZZZ0000: no such pass" in ran.err
    assert "junk: not a pass code" in ran.err
    assert "Traceback" not in ran.err
    wanted = [codes["valid"], codes["season"], codes["used"]]
    assert ran.out.splitlines() == [str(out / f"{code}.png") for code in wanted]
    for code in wanted:
        assert decode_png(out / f"{code}.png") == [code]

    svg = cli("passes", "qr", codes["revoked"], "--out", str(out), "--format", "svg", "--json")
    assert svg.status == 0, svg.err
    assert svg.json() == [
        {
            "code": codes["revoked"],
            "holder_name": "Margaret Hamilton",
            "file": str(out / f"{codes['revoked']}.svg"),
        }
    ]
    root = ET.parse(out / f"{codes['revoked']}.svg").getroot()
    assert svg_texts(root) == ["Margaret Hamilton", codes["revoked"]]


def test_every_pass_of_a_template(tmp_path: Path, cli: RunCli, local_server: LocalServer) -> None:
    codes = local_server.seed()
    template = cli("templates", "list", "--json").json()[0]["id"]
    ran = cli("passes", "qr", "--template", template, "--out", str(tmp_path), "--format", "svg")
    assert ran.status == 0, ran.err
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == sorted(
        f"{c}.svg" for c in codes.values()
    )
    nothing = cli("passes", "qr", "--out", str(tmp_path))
    assert nothing.status == 2
    assert "name the passes" in nothing.err


def test_a_code_with_a_trailing_newline_is_no_file_name(
    tmp_path: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server answering ``"PASS-ABCD1234\\n"``: no file named after it, said as such."""

    async def answer(self: PassQRClient, **_: Any) -> Page[PassInfo]:
        items = (
            PassInfo(code="PASS-ABCD1234\n", holder_name="Ada"),
            PassInfo(code="PASS-ABCD1235"),
        )
        return Page(items=items, page=1, limit=100, total=2)

    monkeypatch.setattr(PassQRClient, "list_passes", answer)
    out = tmp_path / "print"
    ran = cli("passes", "qr", "--template", "T", "--out", str(out))
    assert ran.status == 1
    assert "not a PassQR code" in ran.err
    assert sorted(p.name for p in out.iterdir()) == ["PASS-ABCD1235.png"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_qr_files_keep_the_umask(tmp_path: Path, umask: int, mode: int, fmt: QrFormat) -> None:
    old = os.umask(umask)
    try:
        path, _ = write_qr(PassInfo(code="PASS-ABCD1234", holder_name="Ada"), tmp_path, fmt)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
