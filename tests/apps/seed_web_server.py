# The seed's "Non-ASGI Web Servers" example, verbatim under an App.
import modal

app = modal.App("seed-web-server")


@app.function()
@modal.concurrent(max_inputs=100)
@modal.web_server(8000)
def my_server():
    import subprocess
    # Must bind to 0.0.0.0, not 127.0.0.1
    subprocess.Popen("python -m http.server -d / 8000", shell=True)
