# @web_server functions whose servers the tests talk to through stoker.
import subprocess

import modal

import echo_backend  # noqa: F401  (imported so that it is bundled: the server runs it)

app = modal.App("web-servers")

ECHO_PORT = 18431


@app.function()
@modal.concurrent(max_inputs=10)
@modal.web_server(ECHO_PORT, startup_timeout=60)
def echo():
    subprocess.Popen(["python", "-m", "uvicorn", "echo_backend:app", "--port", str(ECHO_PORT), "--log-level", "warning"])


@app.function()
@modal.web_server(18432, startup_timeout=1)
def never_listens():
    subprocess.Popen(["python", "-c", "import time; time.sleep(30)"])


@app.function()
@modal.web_server(18433, startup_timeout=60)
def one_slot():
    # One input at a time: more callers need more containers, and all of them want port 18433.
    subprocess.Popen(["python", "-m", "uvicorn", "echo_backend:app", "--port", "18433", "--log-level", "warning"])


@app.function()
@modal.web_server(18434, startup_timeout=60)
def mortal():
    # Its server can be told to die (GET /exit), leaving the container without a backend.
    subprocess.Popen(["python", "-m", "uvicorn", "echo_backend:app", "--port", "18434", "--log-level", "warning"])
