"""Managing passes and templates from the command line: the ``passes``, ``templates`` and
``validate`` commands (:mod:`scanner.manage.cli`), their output, the CSV importer and
printable QR codes.

Only commands live here. What the kiosk shares with them is in the core: paging and
retrying within the budget (:mod:`scanner.remote`), the pass search
(:mod:`scanner.search`) and the words for errors (:mod:`scanner.explain`). The UI
never imports this package (an import-linter contract says so).
"""
