"""Run an ``atomsmith`` command (a long training run) in the background so that Ctrl-C still works on it.

A job started with ``nohup ... &`` from a non-interactive shell inherits SIGINT as *ignored*, and Python then never
raises KeyboardInterrupt: ``kill -INT`` does nothing, and the training loop cannot write its exact checkpoint on
the way out. This wrapper restores Python's SIGINT handler first, then runs the CLI in the same process:

    nohup python experiments/train_background.py train diffusion --out ... > run.log 2>&1 &
    echo $! > run.pid
    kill -INT $(cat run.pid)        # later: the loop saves the exact training state and the command exits 130
"""

from __future__ import annotations

import signal
import sys

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from atomsmith.cli.main import app

    sys.argv = ["atomsmith", *sys.argv[1:]]
    app()
