"""`json_stdout()`: while a --json command works, what libraries print (Python or C, fd 1) goes to
stderr, and stdout carries the JSON alone; on an error nothing reaches stdout."""

import subprocess
import sys
import textwrap

NOISY = textwrap.dedent("""
    import os, sys
    from stemd.cli.json_output import json_stdout
    with json_stdout() as emit:
        print("a library's print")
        os.write(1, b"a C library writing to fd 1\\n")
        emit('[{"ok": true}]')
        if sys.argv[1] == "fail":
            raise SystemExit("failed")
    print("after the block")
""")


def run(mode):
    return subprocess.run([sys.executable, "-c", NOISY, mode], capture_output=True, text=True, timeout=60)


def test_the_noise_goes_to_stderr_and_the_json_alone_to_stdout():
    done = run("ok")
    assert done.returncode == 0, done.stderr
    assert done.stdout == '[{"ok": true}]\nafter the block\n'
    assert "a library's print" in done.stderr and "a C library writing to fd 1" in done.stderr


def test_a_failed_command_writes_no_json():
    done = run("fail")
    assert done.returncode == 1 and done.stdout == ""
    assert "failed" in done.stderr
