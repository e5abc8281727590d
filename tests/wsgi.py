"""Calling a WSGI app in-process, without a socket (as Bottle's own tests do)."""

import io
import json
from dataclasses import dataclass
from wsgiref.util import setup_testing_defaults


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(app, method="POST", path="/webhook", body=b"", headers=None, content_length=True, stream=None,
         **environ_extra):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": stream or io.BytesIO(body),
               "REMOTE_ADDR": "127.0.0.1", **environ_extra}
    if content_length:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return Reply(seen["status"], seen["headers"], data)
