"""Every exit status the commands use, defined once.

systemd's ``RestartPreventExitStatus=`` and installers' scripts read these: a
configuration problem (``CONFIG``, sysexits' ``EX_CONFIG``) must never look like a
crash, or the unit would restart into the same bad file forever.

====  ===============  ===============================================================
0     ``OK``           done
1     ``FAILED``       the command ran and failed (a refusal from PassQR, a relay that
                       did not click, ``doctor`` not ready)
2     ``USAGE``        a bad command line or value (argparse's own status, not 64)
3     ``DENIED``       ``manage validate``: the pass was refused
69    ``UNAVAILABLE``  a library the command needs is missing (``EX_UNAVAILABLE``)
78    ``CONFIG``       the configuration or the API key cannot be used (``EX_CONFIG``)
130   ``INTERRUPTED``  Ctrl+C (128 + SIGINT)
====  ===============  ===============================================================
"""

from __future__ import annotations

import os
from typing import Final

OK: Final = os.EX_OK
FAILED: Final = 1
USAGE: Final = 2
DENIED: Final = 3
UNAVAILABLE: Final = os.EX_UNAVAILABLE
CONFIG: Final = os.EX_CONFIG
INTERRUPTED: Final = 130
