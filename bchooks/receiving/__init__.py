"""Receiving webhooks: verify each one on its raw bytes, commit it, only then answer 2xx.

    receiver.py   the Bottle app: /webhook, /healthz, the answers and the rejections
    server.py     `bchooks serve`: the app under granian, its worker processes, clean stops
    committer.py  group commit (one transaction for the requests queued meanwhile) and the background checkpoints
    signing.py    the HMAC-SHA256 signatures: verifying (several secrets, several header values) and signing
"""
