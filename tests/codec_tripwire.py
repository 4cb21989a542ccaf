"""Run ``lophoc serve`` with aiortc's codec factories replaced by tripwires.

Used by ``tests/test_no_transcoding.py``: if anything in the server process asks aiortc for a
decoder or an encoder, the tripwire writes the file named by ``LOPHOC_TRIPWIRE`` and raises.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender


def tripwire(kind: str) -> Any:
    def trip(*args: Any, **kwargs: Any) -> NoReturn:
        with open(os.environ["LOPHOC_TRIPWIRE"], "a") as f:
            f.write(f"{kind} requested\n")
        raise RuntimeError(f"the server asked for a {kind}")

    return trip


aiortc.codecs.get_decoder = tripwire("decoder")
aiortc.codecs.get_encoder = tripwire("encoder")
aiortc.rtcrtpreceiver.get_decoder = tripwire("decoder")  # type: ignore[attr-defined]
aiortc.rtcrtpsender.get_encoder = tripwire("encoder")  # type: ignore[attr-defined]

from web.cli import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
