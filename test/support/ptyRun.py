"""Runs a command on a fresh pseudo-terminal, as a terminal would: the command is the session
leader, the terminal is its controlling terminal and its process group is the foreground group,
so ^C written to the terminal becomes SIGINT for that whole group (the line discipline sends it).

usage: ptyRun.py STEPS_JSON -- ARGV...
STEPS_JSON is a list of ["file", PATH] (wait until PATH exists), ["text", TEXT] (wait until the
terminal has printed TEXT), ["send", TEXT] (type TEXT) and ["pause", SECONDS] (let the terminal
run). Prints one JSON line: everything the
terminal showed, and the exit code or the signal that ended the command.
"""
import json
import os
import pty
import select
import sys
import time

steps = json.loads(sys.argv[1])
argv = sys.argv[sys.argv.index("--") + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

output = b""
closed = False
deadline = time.time() + 30


def pump(timeout):
    global output, closed
    if closed:
        time.sleep(timeout)
        return
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if chunk:
            output += chunk
        else:
            closed = True


for kind, value in steps:
    if kind == "send":
        os.write(fd, value.encode())
        continue
    if kind == "pause":
        until = time.time() + float(value)
        while time.time() < until:
            pump(0.02)
        continue
    while time.time() < deadline:
        if kind == "file" and os.path.exists(value):
            break
        if kind == "text" and value.encode() in output:
            break
        pump(0.02)
    else:
        sys.stderr.write("ptyRun: timed out waiting for %s %r\n" % (kind, value))

status = None
while time.time() < deadline:
    done, waited = os.waitpid(pid, os.WNOHANG)
    if done:
        status = waited
        break
    pump(0.05)
if status is None:
    sys.stderr.write("ptyRun: the command did not end; killed it\n")
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
for _ in range(20):
    if closed:
        break
    pump(0.02)

print(json.dumps({
    "output": output.decode("utf-8", "replace"),
    "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
}))
