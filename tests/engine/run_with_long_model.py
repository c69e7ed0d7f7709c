"""Makes the long-context tiny model in a temporary folder, then runs the given test binary
with the folder as its argument; exits with the binary's status."""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

with tempfile.TemporaryDirectory() as d:
    subprocess.run([sys.executable, os.path.join(HERE, "make_long_model.py"), d], check=True)
    sys.exit(subprocess.run([sys.argv[1], d]).returncode)
