# An app file that fails while being imported.
import modal

app = modal.App("broken-import")

raise ValueError("this app file is broken on purpose")
