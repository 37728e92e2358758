"""amongo quickstart (placeholder: the real example reads MONGODB_URI and is being written)."""
import os

print("quickstart pending (MONGODB_URI=%s)" % os.environ.get("MONGODB_URI", "<unset>"))
