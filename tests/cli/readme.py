#!/usr/bin/env python3
"""Run README.md's shell examples as written, so that the README cannot drift.

    readme.py script README.md OUTDIR PORT   # writes OUTDIR/readme.sh and OUTDIR/manifest.json
    readme.py check OUTDIR                   # judges a finished run: "ok   - ..." / "FAIL - ..."

tests/cli/readme.sh drives both; this file only reads the README and judges outputs.

Every fenced block tagged `sh` is run, in README order, in one bash (`set -euo pipefail`), each
block's text verbatim. HTML comments directly above a block (invisible on GitHub) say how:

    <!-- readme-test: server -->           the block starts Cognate: the test stops the server it
                                           started last and runs this command in the background
    <!-- readme-test: skip (REASON) -->    not run; REASON is printed and must be given
    <!-- readme-test: expect REGEX -->     the block's output (stdout and stderr) must match REGEX
                                           (Python re, multiline); repeatable

Only two things are substituted, both so that the test can run beside a Cognate already on the
default port 9229: the port in `AWS_ENDPOINT_URL=http(s)://127.0.0.1:9229` assignments (the README
must name that port nowhere else in a block it runs), and, for server blocks, COGNATE_LISTEN is set
to the same port in the server's environment. A server block written as `cargo run --release -p
cognate-server -- serve ...` runs the already-built binary as `cognate serve ...` instead of
building a release.
"""

import json
import os
import re
import shlex
import sys

DEFAULT_PORT = "9229"
MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(`{3,})(.*)$")
ENDPOINT = re.compile(r"(AWS_ENDPOINT_URL=[\"']?https?://127\.0\.0\.1:)" + DEFAULT_PORT + r"\b")
CARGO_RUN = "cargo run --release -p cognate-server --"
SHELL_LANGS = {"bash", "shell", "console", "zsh", "shell-session"}


class ReadmeError(Exception):
    pass


def parse(path):
    """The README's fenced blocks with the directives above them, and its sections."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    pending = []  # (line number, directive) from comments directly above the next fence
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        marker = MARKER.match(line)
        if marker:
            pending.append((i + 1, marker.group(1)))
            i += 1
            continue
        if line.startswith("## "):
            section = line[3:].strip()
        if fence:
            ticks, lang = fence.group(1), fence.group(2).strip()
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(ticks):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ReadmeError(f"README.md:{start}: fenced block never closed")
            blocks.append({"line": start, "lang": lang, "text": "\n".join(body), "section": section,
                           "directives": pending})
            pending = []
            i += 1
            continue
        if pending:
            where = ", ".join(str(n) for n, _ in pending)
            raise ReadmeError(f"README.md:{where}: readme-test comment not directly above a fenced block")
        # An indented code block (a blank line, then 4 spaces) would escape the test: fence it.
        if line.startswith("    ") and line.strip() and i > 0 and lines[i - 1].strip() == "":
            raise ReadmeError(f"README.md:{i + 1}: indented code block; use a fenced ```sh block")
        i += 1
    if pending:
        raise ReadmeError("README.md: readme-test comment at the end, above no block")
    return blocks


def classify(blocks, port):
    """The blocks the test runs, with their directives checked and the endpoint port set."""
    out = []
    for b in blocks:
        where = f"README.md:{b['line']}"
        if b["lang"] in SHELL_LANGS or b["lang"] == "":
            raise ReadmeError(f"{where}: fenced block tagged {b['lang']!r}: tag shell examples `sh`, "
                              "anything else with its own language (json, toml, text)")
        if b["lang"] != "sh":
            if b["directives"]:
                raise ReadmeError(f"{where}: readme-test comment above a {b['lang']} block")
            continue
        kind, reason, expects = "run", None, []
        for line, d in b["directives"]:
            if d == "server":
                kind = "server"
            elif d.startswith("skip"):
                m = re.fullmatch(r"skip\s*\((.+)\)", d)
                if not m:
                    raise ReadmeError(f"README.md:{line}: write `skip (REASON)`")
                kind, reason = "skip", m.group(1)
            elif d.startswith("expect "):
                pattern = d[len("expect "):]
                try:
                    re.compile(pattern, re.M)
                except re.error as e:
                    raise ReadmeError(f"README.md:{line}: bad expect regex: {e}")
                expects.append(pattern)
            else:
                raise ReadmeError(f"README.md:{line}: unknown readme-test directive {d!r}")
        text = b["text"]
        command = None
        if kind == "run":
            text = ENDPOINT.sub(lambda m: m.group(1) + str(port), text)
        if kind == "server":
            if expects:
                raise ReadmeError(f"{where}: a server block takes no expect")
            command = " ".join(text.replace("\\\n", " ").split())
            if re.search(r"[;&|<>`$()]", command) or "\n" in command.strip():
                raise ReadmeError(f"{where}: a server block is one plain command")
            if command.startswith(CARGO_RUN + " "):
                command = "cognate " + command[len(CARGO_RUN) + 1:]
            if not command.startswith("cognate serve"):
                raise ReadmeError(f"{where}: a server block runs `cognate serve` (or `{CARGO_RUN} serve`)")
        if kind != "skip" and DEFAULT_PORT in ENDPOINT.sub("", b["text"]):
            # Anything else naming the port would talk to whatever runs on 9229, not to the
            # server under test.
            raise ReadmeError(f"{where}: names port {DEFAULT_PORT} outside an AWS_ENDPOINT_URL=... "
                              "assignment: use $AWS_ENDPOINT_URL")
        out.append({"n": len(out) + 1, "line": b["line"], "section": b["section"], "kind": kind,
                    "reason": reason, "expects": expects, "text": text, "command": command,
                    "original": b["text"]})
    return out


def check_setup(blocks, root):
    """The two set-up commands: one starts Cognate on its defaults, one runs the whole suite."""
    setup = [b for b in blocks if b["section"] == "Set up"]
    if len(setup) != 2:
        raise ReadmeError(f"README.md: the Set up section must hold exactly two commands, has {len(setup)}")
    start, suite = setup
    if start["kind"] != "server" or start["command"] != "cognate serve":
        raise ReadmeError(f"README.md:{start['line']}: the first set-up command must start Cognate on its "
                          f"defaults (`{CARGO_RUN} serve`), got {start['original']!r}")
    if suite["original"].strip() != "./scripts/test.sh" or not os.access(os.path.join(root, "scripts/test.sh"),
                                                                         os.X_OK):
        raise ReadmeError(f"README.md:{suite['line']}: the second set-up command must be ./scripts/test.sh "
                          "(an executable file)")
    # CI runs the README's test command: the two must stay the same.
    with open(os.path.join(root, ".ci/run"), encoding="utf-8") as f:
        if "./scripts/test.sh" not in f.read():
            raise ReadmeError(".ci/run no longer runs ./scripts/test.sh, the README's test command")


PREAMBLE = r"""# Generated from README.md by tests/cli/readme.py; run by tests/cli/readme.sh. Do not edit.
set -euo pipefail
README_SERVER_PID=""
readme_stop() {
    if [[ -n "$README_SERVER_PID" ]]; then
        kill "$README_SERVER_PID" 2>/dev/null || true
        wait "$README_SERVER_PID" 2>/dev/null || true
        README_SERVER_PID=""
        : >"$README_OUT/server.pid"
    fi
}
trap readme_stop EXIT
trap 'exit 143' TERM INT
# readme_server N COMMAND: stop the last server, start COMMAND on the test's port, wait for /health.
readme_server() {
    readme_stop
    env COGNATE_LISTEN="$README_LISTEN" NO_COLOR=1 bash -c "exec $2" >"$README_OUT/$1.out" 2>&1 &
    README_SERVER_PID=$!
    echo "$README_SERVER_PID" >"$README_OUT/server.pid"
    local _
    for _ in $(seq 1 400); do
        # -k only to see that it is up; the blocks themselves check the certificate.
        if curl -sf -o /dev/null "http://$README_LISTEN/health" \
            || curl -sfk -o /dev/null "https://$README_LISTEN/health"; then
            return 0
        fi
        if ! kill -0 "$README_SERVER_PID" 2>/dev/null; then
            echo "the server exited" >>"$README_OUT/$1.out"
            return 1
        fi
        sleep 0.05
    done
    echo "no answer on $README_LISTEN/health" >>"$README_OUT/$1.out"
    return 1
}
"""


def write_script(blocks, outdir):
    parts = [PREAMBLE]
    for b in blocks:
        n = b["n"]
        parts.append(f"\n# --- block {n}: README.md line {b['line']} ({b['kind']})")
        if b["kind"] == "skip":
            continue
        parts.append(f": >\"$README_OUT/{n}.started\"")
        if b["kind"] == "server":
            parts.append(f"readme_server {n} {shlex.quote(b['command'])}")
        else:
            # A group, not a subshell: variables a block sets stay set for the next, as in a terminal.
            parts.append("{")
            parts.append(b["text"])
            parts.append(f"}} >\"$README_OUT/{n}.out\" 2>&1")
        parts.append(f": >\"$README_OUT/{n}.done\"")
    with open(os.path.join(outdir, "readme.sh"), "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    with open(os.path.join(outdir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(blocks, f, indent=1)


def describe(b):
    first = b["original"].strip().split("\n")[0]
    if len(first) > 60:
        first = first[:57] + "..."
    return f"README block {b['n']} (line {b['line']}, {b['section']}): {first}"


def check(outdir):
    with open(os.path.join(outdir, "manifest.json"), encoding="utf-8") as f:
        blocks = json.load(f)
    passed = failed = 0
    unreached = []
    for b in blocks:
        name = describe(b)
        if b["kind"] == "skip":
            print(f"skip - {name}: {b['reason']}")
            continue
        base = os.path.join(outdir, str(b["n"]))
        if not os.path.exists(base + ".started"):
            unreached.append(b)
            continue
        output = ""
        if os.path.exists(base + ".out"):
            with open(base + ".out", encoding="utf-8", errors="replace") as f:
                output = f.read()
        problems = []
        if not os.path.exists(base + ".done"):
            problems.append("failed (non-zero exit under set -euo pipefail)" if b["kind"] == "run"
                            else "the server did not come up")
        elif b["kind"] == "run":
            problems += [f"output does not match /{p}/" for p in b["expects"] if not re.search(p, output, re.M)]
        if problems:
            failed += 1
            print(f"FAIL - {name}")
            for p in problems:
                print(f"       {p}")
            if output:
                print("       output:\n" + "\n".join("         | " + l for l in output.rstrip().split("\n")[-30:]))
        else:
            passed += 1
            checks = f" ({len(b['expects'])} output checks)" if b["expects"] else ""
            print(f"ok   - {name}{checks}")
    if unreached:
        failed += 1
        lines = ", ".join(str(b["line"]) for b in unreached)
        print(f"FAIL - README blocks at lines {lines}: not reached (an earlier block failed)")
    return failed == 0


def main(argv):
    try:
        if len(argv) == 5 and argv[1] == "script":
            readme, outdir, port = argv[2], argv[3], int(argv[4])
            blocks = classify(parse(readme), port)
            check_setup(blocks, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
            write_script(blocks, outdir)
            return 0
        if len(argv) == 3 and argv[1] == "check":
            return 0 if check(argv[2]) else 1
    except ReadmeError as e:
        print(f"FAIL - README.md cannot be tested as written: {e}")
        return 1
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
