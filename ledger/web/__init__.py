"""`creditledger serve`: the HTTP service (ledger/web/app.py), its JSON API (api.py) and the web view.

Importing this package imports nothing of the HTTP stack; `app` and `api` do (Litestar)."""
