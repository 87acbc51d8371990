"""Odin's example job: it reports who and where it ran, through the SDK."""

import getpass
import os
import platform

import pyodin

odin = pyodin.Odin(config="hello.yml")
print(f"hello from {getpass.getuser()} on {platform.node()}")
odin.watch("load average (1 min)", os.getloadavg()[0])
if odin.condition("running in my home", os.getcwd() == os.path.expanduser("~")):
    odin.watch("working directory", os.getcwd())
odin.result("said hello", 0)
