"""Reading an HTTP answer without trusting its size: at most 4 MiB, decompressed.

A hostile or broken server (or a gzip bomb: 815 KB that inflates to gigabytes) must
not take a Pi's memory; what is bigger than any PassQR answer is not PassQR's.
"""

from __future__ import annotations

import zlib

import httpx

from scanner.errors import BadAnswerError

__all__ = ["MAX_ANSWER_BYTES", "bounded_body"]


#: The largest answer read (decompressed): a page of 100 passes is tens of KB. A bigger
#: answer is not PassQR's, and reading it whole could take a Pi's memory.
MAX_ANSWER_BYTES = 4 << 20


async def bounded_body(response: httpx.Response, where: str) -> bytes:
    """The answer's body, at most :data:`MAX_ANSWER_BYTES` after decompression.

    Raises:
        BadAnswerError: larger, or an encoding other than gzip/deflate.
    """
    try:
        ready = response.content  # an in-memory answer (a test transport): nothing to stream
    except httpx.ResponseNotRead:
        pass
    else:
        if len(ready) > MAX_ANSWER_BYTES:
            raise BadAnswerError(f"{where}: answer larger than {MAX_ANSWER_BYTES >> 20} MiB")
        return ready
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        inflate = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    else:
        raise BadAnswerError(f"{where}: answer in an unknown encoding ({encoding[:40]})")
    body = bytearray()
    async for chunk in response.aiter_raw():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, MAX_ANSWER_BYTES + 1 - len(body))
            except zlib.error as err:
                raise BadAnswerError(f"{where}: the answer cannot be decoded") from err
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise BadAnswerError(
                f"{where}: answer larger than {MAX_ANSWER_BYTES >> 20} MiB: is api.base_url right?"
            )
    return bytes(body)
