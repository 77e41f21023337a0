"""A bare ASGI app answering constant JSON (uvicorn + httptools + uvloop): the floor of Python HTTP.

    python benchmarks/servers/bare_asgi.py --port 3000 [--workers 2]
"""

import argparse

import uvicorn

BODY = b'[{"pd":0.0123}]'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run("bare_asgi:app", host="127.0.0.1", port=args.port, workers=args.workers, http="httptools",
                loop="uvloop", log_level="warning", access_log=False, app_dir=__import__("os").path.dirname(__file__))
