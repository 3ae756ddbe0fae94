"""Managing passes and templates from the scanner: the ``passes``, ``templates`` and
``validate`` commands (:mod:`scanner.manage.cli`), the CSV importer, printable QR
codes, and the pass search behind the kiosk's staff screen (:mod:`scanner.manage.search`).

Nothing here imports Textual: the staff screen (:mod:`scanner.ui.staff`) sits on top,
and the commands work on a machine without a screen.
"""
