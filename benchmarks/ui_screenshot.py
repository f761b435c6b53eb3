"""Screenshot of the MLflow runs table with the nested runs expanded (docs/images/mlflow-runs.png).

    .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db -h 127.0.0.1 -p 5055 &
    pip install --target /tmp/wsc websocket-client          # not a project dependency
    PYTHONPATH=/tmp/wsc .venv/bin/python benchmarks/ui_screenshot.py \\
        "http://127.0.0.1:5055/#/experiments/0/runs?workflowType=machine_learning" docs/images/mlflow-runs.png

Headless Chromium (Debian's `chromium` package) through the DevTools protocol: open the page,
click every run's expand button, close the assistant panel, capture the page.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request
from itertools import count

import websocket

EXPAND = (
    "(() => { const b = [...document.querySelectorAll('button[data-component-id*=runnamecellrenderer]')];"
    " b.forEach(x => x.click()); [...document.querySelectorAll('[aria-label=Close]')].forEach(x => x.click());"
    " return b.length; })()"
)


def main(url: str, out: str, height: int = 880, port: int = 9233) -> int:
    chrome = subprocess.Popen(
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=1700,{height}",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pages = None
        for _ in range(50):
            try:
                pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                break
            except OSError:
                time.sleep(0.2)
        socket = websocket.create_connection(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"])
        ids = count(1)

        def call(method: str, **params: object) -> dict:
            call_id = next(ids)
            socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
            while True:
                message = json.loads(socket.recv())
                if message.get("id") == call_id:
                    return message.get("result", {})

        call("Page.enable")
        call("Page.navigate", url=url)
        time.sleep(12)  # the single-page app loads its runs
        call("Runtime.evaluate", expression=EXPAND, returnByValue=True)
        time.sleep(5)
        with open(out, "wb") as image:
            image.write(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
        print(f"wrote {out}")
        return 0
    finally:
        chrome.terminate()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
