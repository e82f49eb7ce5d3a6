#!/usr/bin/env python3
"""Drives `authcert -c` through a pseudo-terminal, as a person at a keyboard:
checks that a new password is asked twice, that nothing typed is echoed, and
that two different entries are refused. Used by passwords.bats."""
import os, pty, sys, time, select

tool, store, good, other = sys.argv[1:5]


def run(args, answers):
    """Runs the tool on a new pty; types each answer after each prompt."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(tool, [tool] + args)
    seen = b""
    for answer in answers:
        deadline = time.time() + 20
        while not seen.rstrip().endswith(b":"):
            if time.time() > deadline or not select.select([fd], [], [], deadline - time.time())[0]:
                sys.exit(f"no prompt; got {seen!r}")
            seen += os.read(fd, 1024)
        time.sleep(0.1)
        os.write(fd, answer.encode() + b"\n")
        seen += b"|"  # the next prompt must come after this mark
        while True:
            r = select.select([fd], [], [], 0.5)[0]
            if not r:
                break
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if seen.rstrip().endswith(b":"):
                break
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), seen.decode(errors="replace")


code, out = run(["-c", "--store", store], [good, good, ""])
assert code == 0, (code, out)
assert out.count("password") >= 2, out
assert good not in out, "the password was echoed: " + out
assert "new recovery secret (empty for none):" in out, out
assert "commits to no successor key" in out, out
code, out = run(["-b", "--store", store, store + "/../tty.zip"], [good, other])
assert code == 2, (code, out)
assert "differ" in out, out
assert good not in out and other not in out, out
code, out = run(["-c", "--store", store], [other])
assert code == 3, (code, out)
# Pre-rotation at the keyboard: a recovery secret asked twice, never echoed;
# the next -c asks for it once and promotes the committed key.
secret = "orbit lantern quietly 7 rivers"
code, out = run(["-c", "--store", store], [good, secret, secret])
assert code == 0, (code, out)
assert out.count("recovery secret") >= 2 and "commits to a successor key" in out, out
assert secret not in out, "the recovery secret was echoed: " + out
code, out = run(["-c", "--store", store], [good, secret])
assert code == 0, (code, out)
assert "committed successor key became current" in out, out
assert secret not in out, out
print("ok")
