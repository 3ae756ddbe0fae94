"""The venue hub: many gates behind one IP, one PassQR budget, no pass admitted twice.

One process per venue, on the LAN: the kiosks talk to it instead of PassQR, with
the hub's own gate keys. It holds a mirror of the venue's passes and decides every
validation in one database (a pass is admitted once, at whichever gate comes
first), and it is the only thing that talks to PassQR: each admission forwarded
once, under the scan's Idempotency-Key, inside the venue's rate limits.

| module | what it holds |
|---|---|
| `config.py` | `hub.toml`, strict like the kiosk's config |
| `tables.py` | the hub's tables beside the server's: roles, outbox, budget, meta |
| `mirror.py` | the upstream's passes and templates written into the mirror |
| `upstream.py` | the HTTP client to PassQR and its durable budget |
| `worker.py` | forwarding admissions, syncing the mirror |
| `app.py` | the API: PassQR's, decided from the mirror, plus `/hub/status` |
| `fresh.py` | a staff key's reads: from PassQR, into the mirror on their way |
| `status.py` | the status document |
| `dashboard.py` | the `/hub` page in a browser |
| `tls.py` | the hub's own certificate for HTTPS on the LAN |
| `cli.py` | `passqr-scanner hub run` and `hub gate-key` |
"""
